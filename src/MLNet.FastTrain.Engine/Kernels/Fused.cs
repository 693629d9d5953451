using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>Small fused vector loops that TensorPrimitives has no single call for.</summary>
internal static class Fused
{
    /// <summary>Σ (x − μ)².</summary>
    public static T SumSquaredDeviation<T>(ReadOnlySpan<T> x, T mu) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T sum = T.Zero;
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<T>.Count)
        {
            var m = Vector256.Create(mu);
            var acc = Vector256<T>.Zero;
            ref T r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            for (; i <= x.Length - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var d = Vector256.LoadUnsafe(ref r, (nuint)i) - m;
                acc += d * d;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < x.Length; i++) { T d = x[i] - mu; sum += d * d; }
        return sum;
    }

    /// <summary>y = a·x + b with scalars a and b.</summary>
    public static void ScaleShift<T>(ReadOnlySpan<T> x, T a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            var vb = Vector256.Create(b);
            ref T rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref T ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
            for (; i <= x.Length - Vector256<T>.Count; i += Vector256<T>.Count)
                (Vector256.LoadUnsafe(ref rx, (nuint)i) * va + vb).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < x.Length; i++) y[i] = x[i] * a + b;
    }

    /// <summary>y = max(a·x + b + r, 0) with scalars a and b; an empty <paramref name="r"/> adds nothing.</summary>
    public static void ScaleShiftRelu<T>(ReadOnlySpan<T> x, T a, T b, ReadOnlySpan<T> r, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        bool residual = !r.IsEmpty;
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            var vb = Vector256.Create(b);
            ref T rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref T rr = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(r);
            ref T ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
            if (residual)
            {
                for (; i <= x.Length - Vector256<T>.Count; i += Vector256<T>.Count)
                    Vector256.Max(Vector256.LoadUnsafe(ref rx, (nuint)i) * va + vb + Vector256.LoadUnsafe(ref rr, (nuint)i), Vector256<T>.Zero).StoreUnsafe(ref ry, (nuint)i);
            }
            else
            {
                for (; i <= x.Length - Vector256<T>.Count; i += Vector256<T>.Count)
                    Vector256.Max(Vector256.LoadUnsafe(ref rx, (nuint)i) * va + vb, Vector256<T>.Zero).StoreUnsafe(ref ry, (nuint)i);
            }
        }
        for (; i < x.Length; i++)
        {
            T v = x[i] * a + b + (residual ? r[i] : T.Zero);
            y[i] = v > T.Zero ? v : T.Zero;
        }
    }

    /// <summary>
    /// The gradient through a ReLU from its output: gz = g where y &gt; 0, else 0; returns (Σ gz, Σ gz·x), the sums a
    /// batch-norm backward needs.
    /// </summary>
    public static (T Sum, T Dot) ReluGradientSums<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> y, ReadOnlySpan<T> x, Span<T> gz) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T sum = T.Zero, dot = T.Zero;
        if (Vector256.IsHardwareAccelerated)
        {
            ref T rg = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
            ref T ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
            ref T rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref T rz = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(gz);
            Vector256<T> accSum = Vector256<T>.Zero, accDot = Vector256<T>.Zero;
            for (; i <= g.Length - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var v = Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.LoadUnsafe(ref ry, (nuint)i), Vector256<T>.Zero),
                    Vector256.LoadUnsafe(ref rg, (nuint)i), Vector256<T>.Zero);
                v.StoreUnsafe(ref rz, (nuint)i);
                accSum += v;
                accDot += v * Vector256.LoadUnsafe(ref rx, (nuint)i);
            }
            sum = Vector256.Sum(accSum);
            dot = Vector256.Sum(accDot);
        }
        for (; i < g.Length; i++)
        {
            T v = y[i] > T.Zero ? g[i] : T.Zero;
            gz[i] = v;
            sum += v;
            dot += v * x[i];
        }
        return (sum, dot);
    }

    /// <summary>d = a·g + b·x + c with scalars a, b, c (the batch-norm input gradient).</summary>
    public static void Affine2<T>(ReadOnlySpan<T> g, T a, ReadOnlySpan<T> x, T b, T c, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            var vb = Vector256.Create(b);
            var vc = Vector256.Create(c);
            ref T rg = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
            ref T rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref T rd = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(d);
            for (; i <= g.Length - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                (Vector256.LoadUnsafe(ref rg, (nuint)i) * va + vc + Vector256.LoadUnsafe(ref rx, (nuint)i) * vb).StoreUnsafe(ref rd, (nuint)i);
            }
        }
        for (; i < g.Length; i++) d[i] = g[i] * a + c + x[i] * b;
    }

    /// <summary>gx = g where x &gt; 0, slope·g elsewhere.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LeakyReluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> g, Span<T> gx, T slope) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(slope);
            ref T rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref T rg = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(g);
            ref T rd = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(gx);
            for (; i <= x.Length - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var gv = Vector256.LoadUnsafe(ref rg, (nuint)i);
                var positive = Vector256.GreaterThan(Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256<T>.Zero);
                Vector256.ConditionalSelect(positive, gv, gv * s).StoreUnsafe(ref rd, (nuint)i);
            }
        }
        for (; i < x.Length; i++) gx[i] = x[i] > T.Zero ? g[i] : slope * g[i];
    }
}
