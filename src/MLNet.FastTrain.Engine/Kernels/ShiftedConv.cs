using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>
/// A convolution as an implicit GEMM over shifted windows of the zero-padded image, with no column matrix.
/// </summary>
/// <remarks>
/// <para>
/// Pad the image [C, H, W] to [C, Hp, Wp] and number output positions by their place in the padded plane,
/// j = oy·Wp + ox. Then the column matrix's row for kernel tap (c, kh, kw) is the padded image read from
/// offset(c, kh, kw) = c·Hp·Wp + kh·dh·Wp + kw·dw on: each row of the "column matrix" is a contiguous run of the
/// padded image. A GEMM micro-kernel can therefore load its B operand straight from the image through a table of K
/// offsets, and the whole B panel of one tile is a few rows of the image that stay in L1 for every output channel.
/// A stride s splits the padded image into s × s phases first (see <see cref="Plan"/>), after which the same holds.
/// </para>
/// <para>
/// The price is the columns past each output row's end (computed, then dropped): 2 of every 30 for a padded
/// 28-wide image. The input gradient of a stride-1 convolution is itself a stride-1 convolution of the padded output
/// gradient with the weights flipped in space and transposed in channels, so it runs here too; the weight gradient
/// reads the same shifted rows, either as a GEMM whose A rows start at the tap offsets or, for long rows, as
/// dot products along them.
/// </para>
/// <para>
/// The micro-kernels need 512-bit vectors; callers take the column-matrix path where <see cref="IsSupported"/> is
/// false. Each output element is one sum in a fixed order of taps.
/// </para>
/// </remarks>
[SkipLocalsInit]
internal static unsafe class ShiftedConv
{
    private const int MR = 8;
    private const int NR = 32;

    public static bool IsSupported => Vector512.IsHardwareAccelerated;

    /// <summary>Set by tests on their own thread to compare against the column-matrix path.</summary>
    [ThreadStatic] internal static bool t_disabled;

    /// <summary>
    /// Whether the forward pass and weight gradient of this geometry run here: equal strides in both directions and
    /// a kernel larger than one pixel. (A 1×1 kernel is a plain GEMM on the image, or on its subsampled copy when
    /// strided; its handful of taps per tile would not pay for the tile's fixed costs here.)
    /// </summary>
    /// <remarks>
    /// Small feature maps go to im2col + GEMM instead: the implicit GEMM runs over the zero-padded image, and once the
    /// padding more than doubles the map (a 2 × 2 or 4 × 4 map with a 3 × 3 kernel: 4× and 2.25× the rows) the wasted
    /// rows cost more than building the column matrix. Measured on ImageNet ResNet-18 at 64 px, batch 32, 2 threads
    /// (layer3 and layer4 at 4 × 4 and 2 × 2): 42.5 → 60.6 images/s.
    /// </remarks>
    public static bool Handles(in ConvGeometry g) =>
        IsSupported && !t_disabled && g.StrideH == g.StrideW && g.KernelH * g.KernelW > 1
        && (long)(g.Height + 2 * g.PadH) * (g.Width + 2 * g.PadW) <= 2L * g.Height * g.Width;

    /// <summary>
    /// Whether the input gradient of this geometry runs here: stride 1, and its padding, d·(k − 1) − p, not negative
    /// (a strided convolution's input gradient is not a plain convolution).
    /// </summary>
    public static bool HandlesInputGradient(in ConvGeometry g) =>
        Handles(g) && g.StrideH == 1 && g.DilationH * (g.KernelH - 1) >= g.PadH && g.DilationW * (g.KernelW - 1) >= g.PadW;

    private const int MaxCachedPlans = 256;
    private static readonly ConcurrentDictionary<PlanKey, Plan> Plans = new();

    private readonly record struct PlanKey(int Channels, int Height, int Width, int KernelH, int KernelW, int Stride, int PadH, int PadW, int DilationH, int DilationW);

    /// <summary>
    /// The plan for a geometry, made once and kept: a training step asks for the same few every time, and a kept
    /// plan costs that step no allocation.
    /// </summary>
    public static Plan PlanFor(in ConvGeometry g) => PlanFor(g.Channels, g.Height, g.Width, g.KernelH, g.KernelW, g.StrideH, g.PadH, g.PadW, g.DilationH, g.DilationW);

    /// <inheritdoc cref="PlanFor(in ConvGeometry)"/>
    public static Plan PlanFor(int channels, int height, int width, int kernelH, int kernelW, int stride, int padH, int padW, int dilationH, int dilationW)
    {
        var key = new PlanKey(channels, height, width, kernelH, kernelW, stride, padH, padW, dilationH, dilationW);
        if (Plans.TryGetValue(key, out var plan)) return plan;
        if (Plans.Count >= MaxCachedPlans) Plans.Clear();
        return Plans.GetOrAdd(key, k => new Plan(k.Channels, k.Height, k.Width, k.KernelH, k.KernelW, k.Stride, k.PadH, k.PadW, k.DilationH, k.DilationW));
    }

    /// <summary>
    /// The geometry of one convolution over its padded image, laid out as stride × stride phases: phase (a, b) holds
    /// the padded pixels (s·i + a, s·j + b). With stride 1 that is the padded image itself; with stride s, tap
    /// (kh, kw) of output (oy, ox) is pixel (oy + ⌊kh·dh/s⌋, ox + ⌊kw·dw/s⌋) of phase (kh·dh mod s, kw·dw mod s),
    /// so a strided convolution is again a sum of shifted windows, now over the phases.
    /// </summary>
    public sealed class Plan
    {
        /// <summary>Describes a convolution of [channels, height, width] with the given kernel, (square) stride, padding and dilation.</summary>
        public Plan(int channels, int height, int width, int kernelH, int kernelW, int stride, int padH, int padW, int dilationH, int dilationW)
        {
            Channels = channels;
            Height = height;
            Width = width;
            Stride = stride;
            PadH = padH;
            PadW = padW;
            int paddedH = height + 2 * padH, paddedW = width + 2 * padW;
            PhaseH = (paddedH + stride - 1) / stride;
            RowStride = (paddedW + stride - 1) / stride;
            OutH = (paddedH - dilationH * (kernelH - 1) - 1) / stride + 1;
            OutW = (paddedW - dilationW * (kernelW - 1) - 1) / stride + 1;
            Columns = (OutH - 1) * RowStride + OutW;
            PhasePlane = PhaseH * RowStride;
            Taps = channels * kernelH * kernelW;
            Offsets = new int[Taps];
            int t = 0, maxOffset = 0;
            PhaseUsed = new bool[stride * stride];
            for (int c = 0; c < channels; c++)
                for (int kh = 0; kh < kernelH; kh++)
                    for (int kw = 0; kw < kernelW; kw++)
                    {
                        int rh = kh * dilationH, rw = kw * dilationW;
                        int phase = (rh % stride) * stride + rw % stride;
                        PhaseUsed[phase] = true;
                        Offsets[t] = (phase * channels + c) * PhasePlane + rh / stride * RowStride + rw / stride;
                        maxOffset = Math.Max(maxOffset, Offsets[t++]);
                    }
            // Tiles are NR columns wide: the last one reads past the last real column, into zeros.
            int tiles = (Columns + NR - 1) / NR;
            PaddedLength = Math.Max(stride * stride * channels * PhasePlane, maxOffset + tiles * NR);
        }

        public int Channels { get; }
        public int Height { get; }
        public int Width { get; }
        public int Stride { get; }
        public int PadH { get; }
        public int PadW { get; }

        /// <summary>Which phases some tap reads.</summary>
        public bool[] PhaseUsed { get; }

        /// <summary>Rows of one phase plane.</summary>
        public int PhaseH { get; }

        /// <summary>Floats from one row of a phase plane to the next: output rows lie this far apart in the columns.</summary>
        public int RowStride { get; }

        public int PhasePlane { get; }
        public int OutH { get; }
        public int OutW { get; }

        /// <summary>Output positions counted in the phase plane, from the first to the last valid one.</summary>
        public int Columns { get; }

        /// <summary>Rows of the implicit column matrix: channels × kernel taps.</summary>
        public int Taps { get; }

        /// <summary>Where each row of the implicit column matrix starts in the padded image.</summary>
        public int[] Offsets { get; }

        /// <summary>Floats a padded image needs, with the zero tail the last tile reads.</summary>
        public int PaddedLength { get; }
    }

    /// <summary>Length of the packed form of an [outputs, taps] weight matrix.</summary>
    public static int PackedLength(int outputs, int taps) => (outputs + MR - 1) / MR * MR * taps;

    /// <summary>Packs weight rows [outputs, taps] into MR-row panels, each tap's MR values side by side (zero past the last row).</summary>
    public static void PackWeights(ReadOnlySpan<float> w, int outputs, int taps, Span<float> packed)
    {
        int panels = (outputs + MR - 1) / MR;
        for (int ip = 0; ip < panels; ip++)
        {
            var panel = packed.Slice(ip * MR * taps, MR * taps);
            for (int r = 0; r < MR; r++)
            {
                int row = ip * MR + r;
                if (row >= outputs) { for (int t = 0; t < taps; t++) panel[t * MR + r] = 0; continue; }
                var src = w.Slice(row * taps, taps);
                for (int t = 0; t < taps; t++) panel[t * MR + r] = src[t];
            }
        }
    }

    /// <summary>
    /// Packs the weights of the input-gradient convolution: W'[c, (o, kh, kw)] = W[o, c, KH−1−kh, KW−1−kw] for
    /// weights W [outputs, channels, KH, KW].
    /// </summary>
    public static void PackFlippedWeights(ReadOnlySpan<float> w, int outputs, int channels, int kernelH, int kernelW, Span<float> packed)
    {
        int taps = outputs * kernelH * kernelW, area = kernelH * kernelW;
        int panels = (channels + MR - 1) / MR;
        for (int ip = 0; ip < panels; ip++)
        {
            var panel = packed.Slice(ip * MR * taps, MR * taps);
            for (int r = 0; r < MR; r++)
            {
                int c = ip * MR + r;
                for (int o = 0; o < outputs; o++)
                    for (int kh = 0; kh < kernelH; kh++)
                        for (int kw = 0; kw < kernelW; kw++)
                        {
                            int t = (o * kernelH + kh) * kernelW + kw;
                            panel[t * MR + r] = c < channels ? w[(o * channels + c) * area + (kernelH - 1 - kh) * kernelW + (kernelW - 1 - kw)] : 0;
                        }
            }
        }
    }

    /// <summary>Copies an image [C, H, W] into the plan's zero-padded layout (all of <paramref name="dst"/>'s first PaddedLength floats are written).</summary>
    public static void Pad(ReadOnlySpan<float> image, Plan plan, Span<float> dst)
    {
        if (plan.Stride != 1)
        {
            PadPhases(image, plan, dst);
            return;
        }
        int h = plan.Height, w = plan.Width, wp = plan.RowStride, ph = plan.PadH, pw = plan.PadW;
        int bottom = (ph + h) * wp;
        for (int c = 0; c < plan.Channels; c++)
        {
            var src = image.Slice(c * h * w, h * w);
            var plane = dst.Slice(c * plan.PhasePlane, plan.PhasePlane);
            // Zero only the border: the rows above, each row's right pad together with the next row's left pad, and
            // the rows below.
            plane[..(ph * wp + pw)].Clear();
            ref float from = ref MemoryMarshal.GetReference(src);
            ref float to = ref MemoryMarshal.GetReference(plane);
            for (int y = 0; y < h; y++)
            {
                int start = (y + ph) * wp + pw;
                CopyShort(ref Unsafe.Add(ref from, y * w), ref Unsafe.Add(ref to, start), w);
                int gapEnd = y + 1 < h ? start + wp : bottom;
                ClearShort(ref Unsafe.Add(ref to, start + w), gapEnd - start - w);
            }
            plane[bottom..].Clear();
        }
        dst[(plan.Channels * plan.PhasePlane)..plan.PaddedLength].Clear();
    }

    /// <summary>
    /// The strided layout: phase (a, b), channel c, row i, column j holds padded pixel (s·i + a, s·j + b). Phases no
    /// tap reads (a 1×1 kernel reads one) are only zeroed: the last tile's spare columns may still reach them.
    /// </summary>
    private static void PadPhases(ReadOnlySpan<float> image, Plan plan, Span<float> dst)
    {
        int s = plan.Stride, h = plan.Height, w = plan.Width, rowStride = plan.RowStride, channels = plan.Channels;
        for (int a = 0; a < s; a++)
            for (int b = 0; b < s; b++)
            {
                var phase = dst.Slice((a * s + b) * channels * plan.PhasePlane, channels * plan.PhasePlane);
                if (!plan.PhaseUsed[a * s + b]) { phase.Clear(); continue; }
                // The phase's columns j whose image column s·j + b − padW lies inside the image.
                int x0 = b - plan.PadW;
                int jStart = Math.Min(rowStride, x0 >= 0 ? 0 : (-x0 + s - 1) / s);
                int jEnd = Math.Max(jStart, Math.Min(rowStride, x0 >= w ? 0 : (w - 1 - x0) / s + 1));
                for (int c = 0; c < channels; c++)
                {
                    var plane = phase.Slice(c * plan.PhasePlane, plan.PhasePlane);
                    var src = image.Slice(c * h * w, h * w);
                    for (int i = 0; i < plan.PhaseH; i++)
                    {
                        var row = plane.Slice(i * rowStride, rowStride);
                        int y = s * i + a - plan.PadH;
                        if ((uint)y >= (uint)h) { row.Clear(); continue; }
                        var from = src.Slice(y * w, w);
                        row[..jStart].Clear();
                        int j = s == 2 ? Im2Col.GatherEven(from, x0, jStart, jEnd, row) : jStart;
                        // A short stride-2 rest in one step: sixteen whole values written, the surplus past jEnd
                        // zeroed below and, where it ran into the next row, overwritten when that row is laid out.
                        int rowAt = (int)Unsafe.ByteOffset(ref MemoryMarshal.GetReference(dst), ref MemoryMarshal.GetReference(row)) / sizeof(float);
                        int fromAt = c * h * w + y * w;
                        if (s == 2 && j < jEnd && Vector512.IsHardwareAccelerated
                            && rowAt + j + 16 <= dst.Length && fromAt + x0 + 2 * j + 32 <= image.Length)
                        {
                            ref float p = ref Unsafe.Add(ref MemoryMarshal.GetReference(image), fromAt + x0 + 2 * j);
                            var evens = Avx512F.PermuteVar16x32x2(Vector512.LoadUnsafe(ref p), Im2Col.EvenLanes, Vector512.LoadUnsafe(ref p, 16));
                            evens.StoreUnsafe(ref MemoryMarshal.GetReference(row), (nuint)j);
                            j = jEnd;
                        }
                        ref float source = ref MemoryMarshal.GetReference(from);
                        ref float target = ref MemoryMarshal.GetReference(row);
                        for (; j < jEnd; j++) Unsafe.Add(ref target, j) = Unsafe.Add(ref source, x0 + s * j);
                        row[jEnd..].Clear();
                    }
                }
            }
        dst[(s * s * channels * plan.PhasePlane)..plan.PaddedLength].Clear();
    }

    /// <summary>
    /// Lays out <paramref name="count"/> output planes [OH, OW] over the plan's padded columns, rows
    /// <paramref name="rowLength"/> (≥ Columns) apart, position oy·Wp + ox, with zeros in each row's padded tail and
    /// past Columns: the dY operand of the weight gradient.
    /// </summary>
    public static void Spread(ReadOnlySpan<float> planes, Plan plan, int count, int rowLength, Span<float> dst)
    {
        int oh = plan.OutH, ow = plan.OutW, wp = plan.RowStride, columns = plan.Columns;
        for (int ch = 0; ch < count; ch++)
        {
            var src = planes.Slice(ch * oh * ow, oh * ow);
            var row = dst.Slice(ch * rowLength, rowLength);
            for (int y = 0; y < oh; y++)
            {
                CopyShort(ref Unsafe.AsRef(in src[y * ow]), ref row[y * wp], ow);
                if (y + 1 < oh) ClearShort(ref row[y * wp + ow], wp - ow);
            }
            row[columns..].Clear();
        }
    }

    /// <summary>
    /// y[o, oy, ox] = Σ_t W[o, t] · padded[offset(t) + oy·Wp + ox] for one padded image; <paramref name="y"/> is
    /// [outputs, OH, OW] and is overwritten.
    /// </summary>
    public static void Run(Plan plan, float* padded, float* packedW, int outputs, float* y)
    {
        int taps = plan.Taps, columns = plan.Columns;
        int panels = (outputs + MR - 1) / MR, tiles = (columns + NR - 1) / NR;
        float* tile = stackalloc float[MR * NR];
        fixed (int* offsets = plan.Offsets)
        {
            for (int jp = 0; jp < tiles; jp++)
            {
                int j0 = jp * NR;
                for (int ip = 0; ip < panels; ip++)
                {
                    Kernel8x32(taps, packedW + (long)ip * MR * taps, padded + j0, offsets, tile);
                    Scatter(plan, tile, j0, Math.Min(NR, columns - j0), ip * MR, Math.Min(MR, outputs - ip * MR), y);
                }
            }
        }
    }

    /// <summary>
    /// The most taps for which <see cref="RunDirect"/> replaces the tiled GEMM: with few taps (a 1-channel stem has 9)
    /// each tile does little arithmetic, and storing it and scattering its valid columns costs more than the sums.
    /// </summary>
    public const int DirectMaxTaps = 27;

    /// <summary>Whether <see cref="RunDirect"/> computes this plan's forward pass: few taps, and output rows a whole vector wide.</summary>
    public static bool RunsDirect(Plan plan) => plan.Taps <= DirectMaxTaps && plan.OutW >= 16;

    /// <summary>
    /// The same sums as <see cref="Run"/>, one output row at a time, 16 columns per step straight into
    /// <paramref name="y"/> (the last step of a row overlaps the one before when OW is not a multiple of 16, and
    /// writes the same values again). <paramref name="w"/> is the plain [outputs, taps] matrix; each output
    /// element is one sum in tap order, as in <see cref="Run"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunDirect(Plan plan, float* padded, float* w, int outputs, float* y)
    {
        int taps = plan.Taps, oh = plan.OutH, ow = plan.OutW, wp = plan.RowStride, outPlane = oh * ow;
        fixed (int* offsets = plan.Offsets)
        {
            for (int oy = 0; oy < oh; oy++)
                for (int x = 0; x < ow; x += 16)
                {
                    int x0 = Math.Min(x, ow - 16);
                    float* src = padded + (long)oy * wp + x0;
                    float* dst = y + (long)oy * ow + x0;
                    int o = 0;
                    for (; o + 8 <= outputs; o += 8) Direct8(taps, w + (long)o * taps, src, offsets, dst + (long)o * outPlane, outPlane);
                    for (; o < outputs; o++)
                    {
                        float* wo = w + (long)o * taps;
                        var acc = Vector512<float>.Zero;
                        for (int t = 0; t < taps; t++) acc = Vector512.FusedMultiplyAdd(Vector512.Create(wo[t]), Vector512.Load(src + offsets[t]), acc);
                        acc.Store(dst + (long)o * outPlane);
                    }
                }
        }
    }

    /// <summary>16 columns of 8 outputs: y[r, :] = Σ_t w[r, t] · src[offset(t) ..], rows of y <paramref name="ldy"/> apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Direct8(int taps, float* w, float* src, int* offsets, float* y, int ldy)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        float* w1 = w + taps, w2 = w1 + taps, w3 = w2 + taps, w4 = w3 + taps, w5 = w4 + taps, w6 = w5 + taps, w7 = w6 + taps;
        for (int t = 0; t < taps; t++)
        {
            var v = Vector512.Load(src + offsets[t]);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(w[t]), v, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[t]), v, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(w2[t]), v, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(w3[t]), v, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(w4[t]), v, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(w5[t]), v, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(w6[t]), v, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(w7[t]), v, c7);
        }
        c0.Store(y); c1.Store(y + ldy); c2.Store(y + 2L * ldy); c3.Store(y + 3L * ldy);
        c4.Store(y + 4L * ldy); c5.Store(y + 5L * ldy); c6.Store(y + 6L * ldy); c7.Store(y + 7L * ldy);
    }

    /// <summary>Writes the valid columns of a tile (those left of OW in their padded row) into y [outputs, OH, OW].</summary>
    private static void Scatter(Plan plan, float* tile, int j0, int cols, int row0, int rows, float* y)
    {
        int wp = plan.RowStride, ow = plan.OutW, outPlane = plan.OutH * ow;
        int x = 0;
        while (x < cols)
        {
            int j = j0 + x, oy = j / wp, ox = j - oy * wp;
            int run = Math.Min(cols - x, wp - ox);     // columns up to the end of this padded row
            int valid = Math.Min(run, ow - ox);        // of which these are real outputs
            if (valid > 0)
            {
                for (int r = 0; r < rows; r++)
                    CopyShort(ref tile[r * NR + x], ref y[(long)(row0 + r) * outPlane + oy * ow + ox], valid);
            }
            x += run;
        }
    }

    /// <summary>Columns from which the weight gradient runs as dot products along the padded plane (below, as a GEMM).</summary>
    public const int DotProductFrom = 256;

    /// <summary>The spread dY rows' length for <see cref="AccumulateWeightGradient"/>: Columns rounded up to a vector.</summary>
    public static int SpreadLength(Plan plan) => (plan.Columns + 15) / 16 * 16;

    /// <summary>Length of the lane accumulators of <see cref="AccumulateWeightGradient"/>.</summary>
    public static int LaneLength(int outputs, int taps) => (outputs + 3) / 4 * 4 * ((taps + 3) / 4 * 4) * 16;

    /// <summary>
    /// lanes[o, t, :] += Σ over 16-column steps of dY[o, j..j+16] ⊙ padded[offset(t) + j..]: the weight gradient as
    /// dot products along the padded plane, kept as 16 partial sums per (output, tap) so that one image after
    /// another adds to them and a single <see cref="ReduceLanes"/> finishes the sum. dY is [outputs, length]
    /// (from <see cref="Spread"/>, zero past Columns); blocks of 4 outputs × 4 taps keep 16 accumulators in registers.
    /// </summary>
    public static void AccumulateWeightGradient(Plan plan, float* dy, int length, int outputs, float* padded, float* zeros, float* lanes)
    {
        int taps = plan.Taps, tapsPadded = (taps + 3) / 4 * 4;
        fixed (int* offsets = plan.Offsets)
        {
            for (int o0 = 0; o0 < outputs; o0 += 4)
            {
                // Rows past the last output read zeros; taps past the last read tap 0 and land in lanes never reduced.
                float* d0 = dy + (long)o0 * length;
                float* d1 = o0 + 1 < outputs ? d0 + length : zeros;
                float* d2 = o0 + 2 < outputs ? d0 + 2L * length : zeros;
                float* d3 = o0 + 3 < outputs ? d0 + 3L * length : zeros;
                for (int t0 = 0; t0 < taps; t0 += 4)
                {
                    float* x0 = padded + offsets[t0];
                    float* x1 = padded + offsets[Math.Min(t0 + 1, taps - 1)];
                    float* x2 = padded + offsets[Math.Min(t0 + 2, taps - 1)];
                    float* x3 = padded + offsets[Math.Min(t0 + 3, taps - 1)];
                    Dot4x4(d0, d1, d2, d3, x0, x1, x2, x3, length, lanes + ((long)o0 * tapsPadded + t0) * 16, tapsPadded * 16);
                }
            }
        }
    }

    /// <summary>Adds each (output, tap)'s 16 lane sums, in lane order, into the transposed gradient dWᵀ [taps, outputs].</summary>
    public static void ReduceLanes(float* lanes, int outputs, int taps, float* gwT)
    {
        int tapsPadded = (taps + 3) / 4 * 4;
        for (int o = 0; o < outputs; o++)
            for (int t = 0; t < taps; t++)
            {
                float* l = lanes + ((long)o * tapsPadded + t) * 16;
                float sum = 0;
                for (int i = 0; i < 16; i++) sum += l[i];
                gwT[(long)t * outputs + o] += sum;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x4(float* d0, float* d1, float* d2, float* d3, float* x0, float* x1, float* x2, float* x3, int length, float* lanes, int ldLanes)
    {
        float* l0 = lanes, l1 = lanes + ldLanes, l2 = l1 + ldLanes, l3 = l2 + ldLanes;
        var c00 = Vector512.Load(l0); var c01 = Vector512.Load(l0 + 16); var c02 = Vector512.Load(l0 + 32); var c03 = Vector512.Load(l0 + 48);
        var c10 = Vector512.Load(l1); var c11 = Vector512.Load(l1 + 16); var c12 = Vector512.Load(l1 + 32); var c13 = Vector512.Load(l1 + 48);
        var c20 = Vector512.Load(l2); var c21 = Vector512.Load(l2 + 16); var c22 = Vector512.Load(l2 + 32); var c23 = Vector512.Load(l2 + 48);
        var c30 = Vector512.Load(l3); var c31 = Vector512.Load(l3 + 16); var c32 = Vector512.Load(l3 + 32); var c33 = Vector512.Load(l3 + 48);
        for (int j = 0; j < length; j += 16)
        {
            var b0 = Vector512.Load(x0 + j); var b1 = Vector512.Load(x1 + j); var b2 = Vector512.Load(x2 + j); var b3 = Vector512.Load(x3 + j);
            var a = Vector512.Load(d0 + j);
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01); c02 = Vector512.FusedMultiplyAdd(a, b2, c02); c03 = Vector512.FusedMultiplyAdd(a, b3, c03);
            a = Vector512.Load(d1 + j);
            c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11); c12 = Vector512.FusedMultiplyAdd(a, b2, c12); c13 = Vector512.FusedMultiplyAdd(a, b3, c13);
            a = Vector512.Load(d2 + j);
            c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21); c22 = Vector512.FusedMultiplyAdd(a, b2, c22); c23 = Vector512.FusedMultiplyAdd(a, b3, c23);
            a = Vector512.Load(d3 + j);
            c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31); c32 = Vector512.FusedMultiplyAdd(a, b2, c32); c33 = Vector512.FusedMultiplyAdd(a, b3, c33);
        }
        c00.Store(l0); c01.Store(l0 + 16); c02.Store(l0 + 32); c03.Store(l0 + 48);
        c10.Store(l1); c11.Store(l1 + 16); c12.Store(l1 + 32); c13.Store(l1 + 48);
        c20.Store(l2); c21.Store(l2 + 16); c22.Store(l2 + 32); c23.Store(l2 + 48);
        c30.Store(l3); c31.Store(l3 + 16); c32.Store(l3 + 32); c33.Store(l3 + 48);
    }

    /// <summary>C[8, 32] = A[8, taps] · B[taps, 32], A packed (element (r, t) at a[8t + r]), B's row t at b + offsets[t].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(int taps, float* a, float* b, int* offsets, float* c)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int t = 0; t < taps; t++, a += MR)
        {
            float* row = b + offsets[t];
            var b0 = Vector512.Load(row);
            var b1 = Vector512.Load(row + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        c00.Store(c); c01.Store(c + 16); c10.Store(c + 32); c11.Store(c + 48);
        c20.Store(c + 64); c21.Store(c + 80); c30.Store(c + 96); c31.Store(c + 112);
        c40.Store(c + 128); c41.Store(c + 144); c50.Store(c + 160); c51.Store(c + 176);
        c60.Store(c + 192); c61.Store(c + 208); c70.Store(c + 224); c71.Store(c + 240);
    }

    /// <summary>
    /// Copies a short run (an image row, a tile's piece of one) with whole vectors: the last one overlaps the one
    /// before instead of falling back to single floats. Source and destination must not overlap.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyShort(ref float src, ref float dst, int count)
    {
        if (count >= 16)
        {
            int i = 0;
            for (; i + 16 <= count; i += 16) Vector512.LoadUnsafe(ref src, (nuint)i).StoreUnsafe(ref dst, (nuint)i);
            if (i < count) Vector512.LoadUnsafe(ref src, (nuint)(count - 16)).StoreUnsafe(ref dst, (nuint)(count - 16));
        }
        else if (count >= 8)
        {
            Vector256.LoadUnsafe(ref src).StoreUnsafe(ref dst);
            Vector256.LoadUnsafe(ref src, (nuint)(count - 8)).StoreUnsafe(ref dst, (nuint)(count - 8));
        }
        else if (count >= 4)
        {
            Vector128.LoadUnsafe(ref src).StoreUnsafe(ref dst);
            Vector128.LoadUnsafe(ref src, (nuint)(count - 4)).StoreUnsafe(ref dst, (nuint)(count - 4));
        }
        else
        {
            for (int i = 0; i < count; i++) Unsafe.Add(ref dst, i) = Unsafe.Add(ref src, i);
        }
    }

    /// <summary>Zeroes a short run: a pad between image rows is usually two floats, where a Clear call costs more than the stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClearShort(ref float dst, int count)
    {
        if (count >= 16)
        {
            MemoryMarshal.CreateSpan(ref dst, count).Clear();
            return;
        }
        for (int i = 0; i < count; i++) Unsafe.Add(ref dst, i) = 0;
    }
}
