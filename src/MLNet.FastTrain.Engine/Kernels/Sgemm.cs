using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>
/// Single-precision GEMM on row-major matrices, C[m,n] (+)= op(A)[m,k]·op(B)[k,n], in the style of BLIS:
/// panels of A (MR rows) and B (NR columns) are packed for a block of KC steps of k, and a register-blocked
/// micro-kernel computes each MR×NR tile of C from one A panel and one B panel.
/// </summary>
/// <remarks>
/// Micro-kernels: 12×32 (24 accumulators) for tall products and 8×32 (16) for the short ones of convolutions, whose
/// row counts are channel counts, with 512-bit vectors; 4×16 with 256-bit and 4×8 with 128-bit vectors
/// (8 accumulators); and a scalar one. The 512-bit kernel reads a plain (untransposed) A in place, eight rows
/// side by side, and a plain B in place, row by row, which saves packing them; transposed operands and partial
/// panels are packed. Threads share one packed copy of B per k-block, each packing a disjoint set
/// of its panels, then split the rows of C into fixed blocks, each packing only its own rows of A. Every element
/// of C is computed by one thread in a fixed order of k, so results do not depend on timing.
/// </remarks>
[SkipLocalsInit]
internal static unsafe class Sgemm
{
    private const int KC = 256;
    private const int MC = 128;                      // rows of A packed at once (rounded down to a multiple of MR)
    private const int StreamedBBytes = 1 << 20;      // packed B up to this size is streamed from L2 past a resident A panel
    private const long ParallelThreshold = 1L << 21; // multiply-adds below which one thread is faster

    internal enum Path { Scalar, V128, V256, V512 }

    /// <summary>The widest path the hardware runs (it honours the runtime's DOTNET_EnableAVX512F / EnableAVX2 switches).</summary>
    internal static Path BestPath =>
        Vector512.IsHardwareAccelerated ? Path.V512 : Vector256.IsHardwareAccelerated ? Path.V256 : Vector128.IsHardwareAccelerated ? Path.V128 : Path.Scalar;

    /// <summary>Rows of C from which the 512-bit path uses its 12-row micro-kernel (more multiply-adds per load).</summary>
    private const int TallFrom = 96;

    /// <summary>Columns of C from which packing A for the 12-row kernel pays even where the 8-row one could read A in place.</summary>
    private const int PackAFrom = 512;

    /// <summary>Whether the 8-row 512-bit kernel can read rows of A in place (4 KiB-strided rows would share one L1 set).</summary>
    private static bool AInPlace(bool transA, int lda, int* rowStarts) => !transA && (rowStarts != null || lda % 1024 != 0);

    private static (int MR, int NR) Tile(Path path, int m, int n, bool aInPlace) => path switch
    {
        Path.V512 => (m >= TallFrom && (!aInPlace || n >= PackAFrom) ? 12 : 8, 32),
        Path.V256 => (4, 16),
        Path.V128 => (4, 8),
        _ => (4, 4),
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, int maxThreads, Path? forcePath = null, int* aRowStarts = null)
    {
        if (aRowStarts != null && transA) throw new ArgumentException("Row starts describe a plain A only.", nameof(aRowStarts));
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        var path = forcePath ?? BestPath;
        var (mr, nr) = Tile(path, m, n, AInPlace(transA, lda, aRowStarts));
        int threads = (long)m * n * k < ParallelThreshold ? 1 : Math.Max(1, Math.Min(maxThreads, (m + mr - 1) / mr));
        int nPanels = (n + nr - 1) / nr;
        // With 512-bit vectors a plain B can be read in place, leaving only a partial last panel to pack. That pays
        // when few row panels of A reuse each B panel (convolutions: M is the channel count); when many do, packing
        // is cheap by comparison and keeps the panel dense in L1. A row stride of a multiple of 4 KiB would map every
        // row of the panel to the same L1 set, so such a B is always packed.
        bool bInPlace = path == Path.V512 && !transB && m <= MC && ldb % 1024 != 0;
        int firstPackedB = bInPlace ? n / nr : 0;
        int packedPanels = nPanels - firstPackedB;
        int kcMax = Math.Min(KC, k);
        float[] bPack = ArrayPool<float>.Shared.Rent(Math.Max(1, packedPanels * nr * kcMax));
        int mPanels = (m + mr - 1) / mr;
        // A packed B small enough for L2 is streamed past each A panel held in L1; otherwise each B panel is held
        // in L1 while the A panels stream by.
        bool streamB = firstPackedB == 0 && (long)packedPanels * nr * kcMax * sizeof(float) <= StreamedBBytes;
        try
        {
            fixed (float* bp = bPack)
            {
                var op = new Operands(a, lda, transA, aRowStarts, b, ldb, transB, c, ldc, m, n, bp, firstPackedB, mr, nr, path, streamB);
                if (threads == 1)
                {
                    for (int pc = 0; pc < k; pc += KC)
                    {
                        int kc = Math.Min(KC, k - pc);
                        PackB(op, pc, kc, firstPackedB, nPanels);
                        RowPanels(op, pc, kc, 0, mPanels, overwrite: pc == 0 && !accumulate);
                    }
                }
                else
                {
                    MultiplyOnTeam(op, k, accumulate, threads, packedPanels, mPanels);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(bPack);
        }
    }

    /// <summary>The k-blocks of a product shared out to the worker team.</summary>
    private static void MultiplyOnTeam(Operands op, int k, bool accumulate, int threads, int packedPanels, int mPanels)
    {
        for (int pc = 0; pc < k; pc += KC)
        {
            int kc = Math.Min(KC, k - pc), start = pc;
            bool overwrite = pc == 0 && !accumulate;
            if (packedPanels > 0)
            {
                WorkerTeam.Run(threads, (op, start, kc, packedPanels, threads), static (s, id) =>
                {
                    var (p0, p1) = ParallelRanges.Share(s.packedPanels, s.threads, id);
                    PackB(s.op, s.start, s.kc, s.op.FirstPackedB + p0, s.op.FirstPackedB + p1);
                });
            }
            // Row panels, not MC blocks, are shared out, so the threads' parts differ by at most one panel.
            WorkerTeam.Run(threads, (op, start, kc, mPanels, threads, overwrite), static (s, id) =>
            {
                var (r0, r1) = ParallelRanges.Share(s.mPanels, s.threads, id);
                RowPanels(s.op, s.start, s.kc, r0, r1, s.overwrite);
            });
        }
    }

    private readonly struct Operands(float* a, int lda, bool transA, int* aRows, float* b, int ldb, bool transB, float* c, int ldc, int m, int n, float* bPack, int firstPackedB, int mr, int nr, Path path, bool streamB)
    {
        public readonly bool StreamB = streamB;

        /// <summary>Where row i of a plain A starts: i·lda on, or at the caller's offset when rows lie anywhere.</summary>
        public readonly int* ARows = aRows;

        public float* RowOfA(int i) => ARows != null ? A + ARows[i] : A + (long)i * Lda;
        public readonly float* A = a, B = b, C = c, BPack = bPack;
        public readonly int Lda = lda, Ldb = ldb, Ldc = ldc, M = m, N = n, MR = mr, NR = nr, FirstPackedB = firstPackedB;

        /// <summary>Packed panel <paramref name="panel"/> of the current k-block (only panels from FirstPackedB on are packed).</summary>
        public float* PackedPanel(int panel, int kc) => BPack + (long)(panel - FirstPackedB) * NR * kc;
        public readonly bool TransA = transA, TransB = transB;
        public readonly Path Path = path;
    }

    /// <summary>Packs B panels [p0, p1) of one k-block: panel j holds, for each kk, NR consecutive columns (zero past n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(in Operands op, int pc, int kc, int p0, int p1)
    {
        int nr = op.NR;
        if (!op.TransB)
        {
            // Walk B row by row (sequential reads); each row scatters NR-wide pieces into the panels.
            int fullEnd = Math.Min(p1, op.N / nr);
            for (int kk = 0; kk < kc; kk++)
            {
                float* src = op.B + (long)(pc + kk) * op.Ldb;
                for (int panel = p0; panel < fullEnd; panel++)
                    CopyRow(src + panel * nr, op.PackedPanel(panel, kc) + kk * nr, nr);
                for (int panel = Math.Max(p0, fullEnd); panel < p1; panel++)
                {
                    int j0 = panel * nr, cols = op.N - j0;
                    float* d = op.PackedPanel(panel, kc) + kk * nr;
                    int x = 0;
                    for (; x < cols; x++) d[x] = src[j0 + x];
                    for (; x < nr; x++) d[x] = 0;
                }
            }
            return;
        }
        for (int panel = p0; panel < p1; panel++)
        {
            int j0 = panel * nr;
            int cols = Math.Min(nr, op.N - j0);
            float* dst = op.PackedPanel(panel, kc);
            for (int j = 0; j < nr; j++)
            {
                if (j >= cols) { for (int kk = 0; kk < kc; kk++) dst[kk * nr + j] = 0; continue; }
                float* src = op.B + (long)(j0 + j) * op.Ldb + pc;
                for (int kk = 0; kk < kc; kk++) dst[kk * nr + j] = src[kk];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRow(float* src, float* dst, int count)
    {
        // count is NR: a multiple of the vector width of the path that chose it.
        int x = 0;
        if (Vector512.IsHardwareAccelerated) for (; x + 16 <= count; x += 16) Vector512.Store(Vector512.Load(src + x), dst + x);
        if (Vector256.IsHardwareAccelerated) for (; x + 8 <= count; x += 8) Vector256.Store(Vector256.Load(src + x), dst + x);
        for (; x < count; x++) dst[x] = src[x];
    }

    /// <summary>Computes row panels [p0, p1) of C (MR rows each) for one k-block, packing those rows of A MC at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowPanels(in Operands op, int pc, int kc, int p0, int p1, bool overwrite)
    {
        int mr = op.MR;
        int blockPanels = MC / mr;
        float[] aPack = ArrayPool<float>.Shared.Rent(blockPanels * mr * kc);
        float* scratch = stackalloc float[12 * 32];
        try
        {
            fixed (float* ap = aPack)
            {
                for (int q0 = p0; q0 < p1; q0 += blockPanels)
                {
                    int i0 = q0 * mr;
                    int rows = Math.Min(Math.Min(p1, q0 + blockPanels) * mr, op.M) - i0;
                    // With 512-bit vectors the 8-row kernel reads full row panels of a plain A in place; only a partial
                    // last panel, or a transposed A, is packed.
                    bool direct = op.Path == Path.V512 && mr == 8 && AInPlace(op.TransA, op.Lda, op.ARows);
                    int firstPacked = direct ? rows / mr : 0;
                    int aPanels = (rows + mr - 1) / mr;
                    if (firstPacked < aPanels) PackA(op, i0 + firstPacked * mr, rows - firstPacked * mr, pc, kc, ap);
                    if (op.StreamB) BlockStreamingB(op, pc, kc, i0, rows, ap, firstPacked, scratch, overwrite);
                    else BlockHoldingB(op, pc, kc, i0, rows, ap, firstPacked, scratch, overwrite);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(aPack);
        }
    }

    /// <summary>One block of rows: each B panel stays in L1 while the block's A panels pass it.</summary>
    private static void BlockHoldingB(in Operands op, int pc, int kc, int i0, int rows, float* ap, int firstPacked, float* scratch, bool overwrite)
    {
        int nr = op.NR, nPanels = (op.N + nr - 1) / nr, aPanels = (rows + op.MR - 1) / op.MR;
        for (int jp = 0; jp < nPanels; jp++)
            for (int ip = 0; ip < aPanels; ip++)
                Tile(op, pc, kc, i0, rows, ap, firstPacked, scratch, ip, jp, overwrite);
    }

    /// <summary>One block of rows: each A panel stays in L1 while the packed B panels stream past it from L2.</summary>
    private static void BlockStreamingB(in Operands op, int pc, int kc, int i0, int rows, float* ap, int firstPacked, float* scratch, bool overwrite)
    {
        int nr = op.NR, nPanels = (op.N + nr - 1) / nr, aPanels = (rows + op.MR - 1) / op.MR;
        for (int ip = 0; ip < aPanels; ip++)
            for (int jp = 0; jp < nPanels; jp++)
                Tile(op, pc, kc, i0, rows, ap, firstPacked, scratch, ip, jp, overwrite);
    }

    /// <summary>The MR×NR tile (ip, jp) of a row block for one k-block; edge tiles go through a scratch tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile(in Operands op, int pc, int kc, int i0, int rows, float* ap, int firstPacked, float* scratch, int ip, int jp, bool overwrite)
    {
        int mr = op.MR, nr = op.NR;
        int j0 = jp * nr, cols = Math.Min(nr, op.N - j0);
        bool packedB = jp >= op.FirstPackedB;
        float* bPanel = packedB ? op.PackedPanel(jp, kc) : op.B + (long)pc * op.Ldb + j0;
        int bRow = packedB ? nr : op.Ldb;
        int r0 = ip * mr, rCount = Math.Min(mr, rows - r0);
        float* cTile = op.C + (long)(i0 + r0) * op.Ldc + j0;
        bool full = rCount == mr && cols == nr;
        float* dst = full ? cTile : scratch;
        int ldDst = full ? op.Ldc : nr;
        bool over = !full || overwrite;
        float* aPanel = ap + (long)(ip - firstPacked) * mr * kc;
        if (op.Path == Path.V512)
        {
            if (ip < firstPacked) Kernel8x32Rows(kc, op, i0 + r0, pc, bPanel, bRow, dst, ldDst, over);
            else if (mr == 12) Kernel12x32(kc, aPanel, bPanel, bRow, dst, ldDst, over);
            else Kernel8x32(kc, aPanel, bPanel, bRow, dst, ldDst, over);
        }
        else
        {
            Kernel(op.Path, kc, aPanel, bPanel, dst, ldDst, over);
        }
        // An edge tile was computed whole into scratch; add its valid part.
        if (!full) AddTile(scratch, nr, cTile, op.Ldc, rCount, cols, overwrite);
    }

    /// <summary>Writes (or adds) the valid rows × cols of a scratch tile into C.</summary>
    private static void AddTile(float* tile, int nr, float* c, int ldc, int rows, int cols, bool overwrite)
    {
        for (int r = 0; r < rows; r++)
        {
            float* dst = c + (long)r * ldc;
            float* src = tile + r * nr;
            if (overwrite) for (int x = 0; x < cols; x++) dst[x] = src[x];
            else for (int x = 0; x < cols; x++) dst[x] += src[x];
        }
    }

    /// <summary>Packs rows [i0, i0+rows) of op(A) for one k-block into MR-row panels (zero past the last row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(in Operands op, int i0, int rows, int pc, int kc, float* dst)
    {
        int mr = op.MR;
        int panels = (rows + mr - 1) / mr;
        float** rowPtr = stackalloc float*[mr];
        for (int ip = 0; ip < panels; ip++)
        {
            float* panel = dst + (long)ip * mr * kc;
            int valid = Math.Min(mr, rows - ip * mr);
            if (!op.TransA)
            {
                // Read MR rows side by side so the panel is written sequentially.
                for (int r = 0; r < valid; r++) rowPtr[r] = op.RowOfA(i0 + ip * mr + r) + pc;
                for (int kk = 0; kk < kc; kk++, panel += mr)
                {
                    int r = 0;
                    for (; r < valid; r++) panel[r] = rowPtr[r][kk];
                    for (; r < mr; r++) panel[r] = 0;
                }
            }
            else
            {
                // op(A) = Aᵀ: each k step reads MR consecutive values of one row of the stored matrix.
                float* src = op.A + (long)pc * op.Lda + i0 + ip * mr;
                for (int kk = 0; kk < kc; kk++, panel += mr, src += op.Lda)
                {
                    int r = 0;
                    if (valid == mr) { CopyRow(src, panel, mr); continue; }
                    for (; r < valid; r++) panel[r] = src[r];
                    for (; r < mr; r++) panel[r] = 0;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel(Path path, int kc, float* a, float* b, float* c, int ldc, bool overwrite)
    {
        switch (path)
        {
            case Path.V256: Kernel4x16(kc, a, b, c, ldc, overwrite); break;
            case Path.V128: Kernel4x8(kc, a, b, c, ldc, overwrite); break;
            default: KernelScalar(kc, a, b, c, ldc, overwrite); break;
        }
    }

    // The 512-bit 8×32 micro-kernels: C[8, 32] (+)= A[8, kc]·B[kc, 32], with B's row p at b + p·bRow (packed: 32; in
    // place: ldb). Kernel8x32 reads a packed A panel (element (r, p) at a[8p + r]); Kernel8x32Rows reads eight rows of
    // a plain A in place (element (r, p) at row r's start + p; rows are lda apart, or wherever the caller's row starts
    // say, as for the shifted image rows of a convolution's weight gradient). They are kept apart because one general kernel needs more
    // pointer registers than x64 has and spills inside the loop.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, int ldc)
    {
        // The tile of C is read (or written) only after the k loop: ask for its lines now so they arrive meanwhile.
        if (!Sse.IsSupported) return;
        for (int r = 0; r < 8; r++) { Sse.Prefetch0(c + (long)r * ldc); Sse.Prefetch0(c + (long)r * ldc + 16); }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(int kc, float* a, float* b, int bRow, float* c, int ldc, bool overwrite)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        PrefetchTile(c, ldc);
        for (int p = 0; p < kc; p++, b += bRow)
        {
            PrefetchAhead(b, bRow);
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            a += 8;
        }
        Store512(c, c00, c01, overwrite); c += ldc;
        Store512(c, c10, c11, overwrite); c += ldc;
        Store512(c, c20, c21, overwrite); c += ldc;
        Store512(c, c30, c31, overwrite); c += ldc;
        Store512(c, c40, c41, overwrite); c += ldc;
        Store512(c, c50, c51, overwrite); c += ldc;
        Store512(c, c60, c61, overwrite); c += ldc;
        Store512(c, c70, c71, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel12x32(int kc, float* a, float* b, int bRow, float* c, int ldc, bool overwrite)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default, c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default;
        for (int p = 0; p < kc; p++, b += bRow, a += 12)
        {
            PrefetchAhead(b, bRow);
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            x = Vector512.Create(a[8]); c80 = Vector512.FusedMultiplyAdd(x, b0, c80); c81 = Vector512.FusedMultiplyAdd(x, b1, c81);
            x = Vector512.Create(a[9]); c90 = Vector512.FusedMultiplyAdd(x, b0, c90); c91 = Vector512.FusedMultiplyAdd(x, b1, c91);
            x = Vector512.Create(a[10]); cA0 = Vector512.FusedMultiplyAdd(x, b0, cA0); cA1 = Vector512.FusedMultiplyAdd(x, b1, cA1);
            x = Vector512.Create(a[11]); cB0 = Vector512.FusedMultiplyAdd(x, b0, cB0); cB1 = Vector512.FusedMultiplyAdd(x, b1, cB1);
        }
        Store512(c, c00, c01, overwrite); c += ldc;
        Store512(c, c10, c11, overwrite); c += ldc;
        Store512(c, c20, c21, overwrite); c += ldc;
        Store512(c, c30, c31, overwrite); c += ldc;
        Store512(c, c40, c41, overwrite); c += ldc;
        Store512(c, c50, c51, overwrite); c += ldc;
        Store512(c, c60, c61, overwrite); c += ldc;
        Store512(c, c70, c71, overwrite); c += ldc;
        Store512(c, c80, c81, overwrite); c += ldc;
        Store512(c, c90, c91, overwrite); c += ldc;
        Store512(c, cA0, cA1, overwrite); c += ldc;
        Store512(c, cB0, cB1, overwrite);
    }

    /// <summary>Asks for the B rows a few steps ahead: a streamed B panel comes from L2, and this hides the wait.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchAhead(float* b, int bRow)
    {
        if (!Sse.IsSupported) return;
        float* ahead = b + 16 * bRow;
        Sse.Prefetch0(ahead);
        Sse.Prefetch0(ahead + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32Rows(int kc, in Operands op, int row, int pc, float* b, int bRow, float* c, int ldc, bool overwrite)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        PrefetchTile(c, ldc);
        float* a0 = op.RowOfA(row) + pc, a1 = op.RowOfA(row + 1) + pc, a2 = op.RowOfA(row + 2) + pc, a3 = op.RowOfA(row + 3) + pc;
        float* a4 = op.RowOfA(row + 4) + pc, a5 = op.RowOfA(row + 5) + pc, a6 = op.RowOfA(row + 6) + pc, a7 = op.RowOfA(row + 7) + pc;
        for (int p = 0; p < kc; p++, b += bRow)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a0[p]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[p]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[p]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[p]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[p]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[p]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[p]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[p]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        Store512(c, c00, c01, overwrite); c += ldc;
        Store512(c, c10, c11, overwrite); c += ldc;
        Store512(c, c20, c21, overwrite); c += ldc;
        Store512(c, c30, c31, overwrite); c += ldc;
        Store512(c, c40, c41, overwrite); c += ldc;
        Store512(c, c50, c51, overwrite); c += ldc;
        Store512(c, c60, c61, overwrite); c += ldc;
        Store512(c, c70, c71, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> v0, Vector512<float> v1, bool overwrite)
    {
        if (!overwrite) { v0 += Vector512.Load(c); v1 += Vector512.Load(c + 16); }
        v0.Store(c);
        v1.Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x16(int kc, float* a, float* b, float* c, int ldc, bool overwrite)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            a += 4;
            b += 16;
        }
        Store256(c, c00, c01, overwrite); c += ldc;
        Store256(c, c10, c11, overwrite); c += ldc;
        Store256(c, c20, c21, overwrite); c += ldc;
        Store256(c, c30, c31, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, Vector256<float> v0, Vector256<float> v1, bool overwrite)
    {
        if (!overwrite) { v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8); }
        v0.Store(c);
        v1.Store(c + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x8(int kc, float* a, float* b, float* c, int ldc, bool overwrite)
    {
        Vector128<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector128.Load(b);
            var b1 = Vector128.Load(b + 4);
            var x = Vector128.Create(a[0]); c00 = Vector128.FusedMultiplyAdd(x, b0, c00); c01 = Vector128.FusedMultiplyAdd(x, b1, c01);
            x = Vector128.Create(a[1]); c10 = Vector128.FusedMultiplyAdd(x, b0, c10); c11 = Vector128.FusedMultiplyAdd(x, b1, c11);
            x = Vector128.Create(a[2]); c20 = Vector128.FusedMultiplyAdd(x, b0, c20); c21 = Vector128.FusedMultiplyAdd(x, b1, c21);
            x = Vector128.Create(a[3]); c30 = Vector128.FusedMultiplyAdd(x, b0, c30); c31 = Vector128.FusedMultiplyAdd(x, b1, c31);
            a += 4;
            b += 8;
        }
        Store128(c, c00, c01, overwrite); c += ldc;
        Store128(c, c10, c11, overwrite); c += ldc;
        Store128(c, c20, c21, overwrite); c += ldc;
        Store128(c, c30, c31, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store128(float* c, Vector128<float> v0, Vector128<float> v1, bool overwrite)
    {
        if (!overwrite) { v0 += Vector128.Load(c); v1 += Vector128.Load(c + 4); }
        v0.Store(c);
        v1.Store(c + 4);
    }

    private static void KernelScalar(int kc, float* a, float* b, float* c, int ldc, bool overwrite)
    {
        float* acc = stackalloc float[16];
        new Span<float>(acc, 16).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 4; j++) acc[r * 4 + j] = MathF.FusedMultiplyAdd(a[r], b[j], acc[r * 4 + j]);
            a += 4;
            b += 4;
        }
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 4; j++) c[(long)r * ldc + j] = overwrite ? acc[r * 4 + j] : c[(long)r * ldc + j] + acc[r * 4 + j];
    }
}
