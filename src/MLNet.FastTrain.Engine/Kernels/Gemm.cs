using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>
/// General matrix multiply on row-major, contiguous matrices:
/// <c>C[m,n] = op(A)[m,k] · op(B)[k,n]</c>, optionally added to what C holds.
/// </summary>
/// <remarks>
/// float32 goes to the packed, register-blocked <see cref="Sgemm"/>. float64 (used for gradient checks) takes a
/// plain path: a transposed operand is first copied into its plain layout, then each row of C is built as a sum
/// of scaled rows of B (an i-k-j loop whose inner step is a vectorised multiply-add). Rows of C are split across
/// cores in fixed blocks, each computed by exactly one thread in a fixed order, so results do not depend on timing.
/// </remarks>
internal static unsafe class Gemm
{
    private const long ParallelThreshold = 1L << 18; // multiply-adds below which threads cost more than they save

    /// <summary>
    /// C = op(A)·op(B), or C += op(A)·op(B) when <paramref name="accumulate"/>; maxThreads = 0 means
    /// <see cref="EngineSettings.Threads"/>, and callers that already run in parallel pass 1.
    /// </summary>
    public static void Multiply<T>(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, bool accumulate, int maxThreads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
            throw new ArgumentException($"GEMM operands are too short for m={m}, n={n}, k={k}.");
        int threads = maxThreads > 0 ? maxThreads : EngineSettings.Threads;
        if (typeof(T) == typeof(float))
        {
            fixed (T* pa = a)
            fixed (T* pb = b)
            fixed (T* pc = c)
            {
                Sgemm.Multiply(transA, transB, m, n, k, (float*)pa, transA ? m : k, (float*)pb, transB ? k : n, (float*)pc, n, accumulate, threads);
            }
            return;
        }
        PlainMultiply(transA, transB, m, n, k, a, b, c, accumulate, threads);
    }

    /// <summary>The plain i-k-j path, for any element type.</summary>
    internal static void PlainMultiply<T>(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, bool accumulate, int maxThreads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) c[..(m * n)].Clear();
            return;
        }

        T[]? aBuffer = null, bBuffer = null;
        try
        {
            if (transA)
            {
                aBuffer = ArrayPool<T>.Shared.Rent(m * k);
                Transpose(a, cols: m, rows: k, aBuffer); // A is stored as [k, m]
                a = aBuffer.AsSpan(0, m * k);
            }
            if (transB)
            {
                bBuffer = ArrayPool<T>.Shared.Rent(k * n);
                Transpose(b, cols: k, rows: n, bBuffer); // B is stored as [n, k]
                b = bBuffer.AsSpan(0, k * n);
            }

            fixed (T* pa = a)
            fixed (T* pb = b)
            fixed (T* pc = c)
            {
                nint ia = (nint)pa, ib = (nint)pb, ic = (nint)pc;
                long work = (long)m * n * k;
                int threads = work < ParallelThreshold ? 1 : Math.Min(maxThreads, m);
                if (threads <= 1)
                {
                    Rows<T>(0, m, n, k, (T*)ia, (T*)ib, (T*)ic, accumulate);
                }
                else
                {
                    int block = (m + threads - 1) / threads;
                    WorkerTeam.Run(threads, (block, m, n, k, ia, ib, (ic, accumulate)), static (s, t) =>
                    {
                        int start = t * s.block, end = Math.Min(s.m, start + s.block);
                        if (start < end) Rows<T>(start, end, s.n, s.k, (T*)s.ia, (T*)s.ib, (T*)s.Item7.ic, s.Item7.accumulate);
                    });
                }
            }
        }
        finally
        {
            if (aBuffer is not null) ArrayPool<T>.Shared.Return(aBuffer);
            if (bBuffer is not null) ArrayPool<T>.Shared.Return(bBuffer);
        }
    }

    private static void Rows<T>(int start, int end, int n, int k, T* a, T* b, T* c, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = start; i < end; i++)
        {
            var row = new Span<T>(c + (long)i * n, n);
            if (!accumulate) row.Clear();
            T* ai = a + (long)i * k;
            for (int p = 0; p < k; p++)
            {
                T s = ai[p];
                if (s == T.Zero) continue;
                var brow = new ReadOnlySpan<T>(b + (long)p * n, n);
                TensorPrimitives.MultiplyAdd(brow, s, row, row);
            }
        }
    }

    /// <summary>Writes the transpose of a row-major [rows, cols] matrix as [cols, rows].</summary>
    public static void Transpose<T>(ReadOnlySpan<T> src, int cols, int rows, Span<T> dst)
    {
        const int Tile = 32;
        for (int r0 = 0; r0 < rows; r0 += Tile)
        {
            int r1 = Math.Min(rows, r0 + Tile);
            for (int c0 = 0; c0 < cols; c0 += Tile)
            {
                int c1 = Math.Min(cols, c0 + Tile);
                for (int r = r0; r < r1; r++)
                    for (int col = c0; col < c1; col++)
                        dst[col * rows + r] = src[r * cols + col];
            }
        }
    }
}
