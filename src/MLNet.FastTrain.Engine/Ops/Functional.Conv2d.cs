using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Kernels;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>
    /// 2-d convolution (cross-correlation, as in torch) of x [N, C, H, W] with weight [O, C/groups, KH, KW] and an
    /// optional bias [O]. Output [N, O, OH, OW] with OH = ⌊(H + 2·padH − dilH·(KH − 1) − 1) / strideH⌋ + 1.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null,
        (int H, int W)? stride = null, (int H, int W)? padding = null, (int H, int W)? dilation = null, int groups = 1)
    {
        var (sh, sw) = stride ?? (1, 1);
        var (ph, pw) = padding ?? (0, 0);
        var (dh, dw) = dilation ?? (1, 1);
        CheckSameDType("conv2d", x, weight);
        CheckRank("conv2d", "input", x, 4);
        CheckRank("conv2d", "weight", weight, 4);
        if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || ph < 0 || pw < 0)
            throw new ArgumentOutOfRangeException(nameof(stride), $"conv2d: stride ({sh}, {sw}) and dilation ({dh}, {dw}) must be ≥ 1 and padding ({ph}, {pw}) ≥ 0.");
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        int o = weight.Size(0), kh = weight.Size(2), kw = weight.Size(3);
        if (groups < 1 || c % groups != 0 || o % groups != 0)
            throw new ArgumentException($"conv2d: groups = {groups} must divide both input channels ({c}) and output channels ({o}).", nameof(groups));
        if (weight.Size(1) != c / groups)
            throw ShapeMismatchException.For("conv2d", $"weight's second dimension must be input channels / groups = {c / groups}", x.Shape, weight.Shape);
        if (bias is not null && (bias.Rank != 1 || bias.Size(0) != o))
            throw ShapeMismatchException.For("conv2d", "bias must be [out_channels]", bias.Shape, weight.Shape);
        var geo = new ConvGeometry(c / groups, h, w, kh, kw, sh, sw, ph, pw, dh, dw);
        if (geo.OutH < 1 || geo.OutW < 1)
            throw ShapeMismatchException.For("conv2d", "the kernel does not fit in the padded input", x.Shape, weight.Shape);

        var y = Tensor.Empty([n, o, geo.OutH, geo.OutW], x.DType);
        OperationCounters.Add((long)n * o * geo.ColRows * geo.ColCols);
        if (IsF32(x) && ShiftedConv.Handles(geo)) ConvForwardShifted(x, weight, bias, y, geo, groups);
        else if (IsF32(x)) ConvForward<float>(x, weight, bias, y, geo, groups);
        else ConvForward<double>(x, weight, bias, y, geo, groups);
        return GradRecorder.Record(y, "conv2d", [x, weight, bias], (x, weight, bias, geo, groups), static (s, g, grads) =>
        {
            var (x, weight, bias, geo, groups) = s;
            bool shifted = IsF32(x) && ShiftedConv.Handles(geo), shiftedInput = shifted && ShiftedConv.HandlesInputGradient(geo);
            // The shifted input gradient writes every element; the column-matrix path zeroes its threads' images first.
            Tensor? gx = x.RequiresGrad ? Tensor.EmptyLike(x) : null;
            Tensor? gw = weight.RequiresGrad ? Tensor.ZerosLike(weight) : null;
            Tensor? gb = bias is not null && bias.RequiresGrad ? Tensor.ZerosLike(bias) : null;
            Tensor? gxLeft = gx, gwLeft = gw;   // what the column-matrix path still has to compute
            if (shifted)
            {
                if (gx is not null && shiftedInput)
                {
                    ConvInputGradientShifted(weight, g, gx, geo, groups);
                    gxLeft = null;
                }
                if (gw is not null)
                {
                    ConvWeightGradientShifted(x, g, gw, geo, groups);
                    gwLeft = null;
                }
            }
            if (IsF32(x)) ConvBackward<float>(x, weight, g, gxLeft, gwLeft, gb, geo, groups);
            else ConvBackward<double>(x, weight, g, gxLeft, gwLeft, gb, geo, groups);
            (grads[0], grads[1], grads[2]) = (gx, gw, gb);
        });
    }

    // Samples are split into one contiguous range per thread, and each thread works through its range in chunks
    // of a few samples whose column matrices sit side by side, so one single-threaded GEMM covers the chunk (small
    // feature maps would otherwise leave most of a GEMM's fixed cost unamortised). Every output element is computed
    // by one thread in a fixed order. Weight gradients are summed per thread and the partial sums are added in
    // thread order: identical results for a given thread count.

    private const int ChunkColumns = 1024;          // aim for at least this many GEMM columns per chunk
    private const int MaxChunkElements = 1 << 22;   // and at most this many column-matrix elements

    private static int ConvThreads(int samples) => Math.Max(1, Math.Min(EngineSettings.Threads, samples));

    private static int ChunkSamples(in ConvGeometry g) =>
        Math.Max(1, Math.Min((ChunkColumns + g.ColCols - 1) / g.ColCols, MaxChunkElements / Math.Max(1, g.ColRows * g.ColCols)));

    /// <summary>True when the column matrix of one image group is the image itself (1×1 kernel, stride 1, no padding).</summary>
    private static bool IsPointwise(in ConvGeometry g) =>
        g.KernelH == 1 && g.KernelW == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 0 && g.PadW == 0;

    /// <summary>
    /// Runs <paramref name="body"/>(state, thread, start, end) over one contiguous range of the samples per thread;
    /// with a static lambda and a value-tuple state nothing is allocated.
    /// </summary>
    private static void RunBySample<TState>(int n, TState state, Action<TState, int, int, int> body)
    {
        int threads = ConvThreads(n);
        if (threads == 1) { body(state, 0, 0, n); return; }
        WorkerTeam.Run(threads, (state, body, n, threads), static (s, id) =>
        {
            var (start, end) = ParallelRanges.Share(s.n, s.threads, id);
            s.body(s.state, id, start, end);
        });
    }

    /// <summary>Writes the column matrices of samples [b0, b0+s) of one group side by side (row stride s·OH·OW).</summary>
    private static void UnfoldChunk<T>(ReadOnlySpan<T> xs, in ConvGeometry geo, int groups, int grp, int b0, int s, Span<T> col)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = geo.Channels * geo.Height * geo.Width, outPlane = geo.ColCols, cols = s * outPlane;
        for (int i = 0; i < s; i++)
        {
            var image = xs.Slice(((b0 + i) * groups + grp) * inPlane, inPlane);
            if (IsPointwise(geo))
            {
                for (int r = 0; r < geo.ColRows; r++) image.Slice(r * outPlane, outPlane).CopyTo(col.Slice(r * cols + i * outPlane, outPlane));
            }
            else
            {
                Im2Col.Unfold(image, geo, col[(i * outPlane)..], cols);
            }
        }
    }

    private static void ConvForward<T>(Tensor x, Tensor weight, Tensor? bias, Tensor y, ConvGeometry geo, int groups)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        RunBySample(x.Size(0), (x, weight, bias, y, geo, groups), static (s, _, start, end) =>
            ConvForwardSamples<T>(s.x, s.weight, s.bias, s.y, s.geo, s.groups, start, end));

    /// <summary>The column-matrix forward pass of samples [start, end), a chunk of samples per GEMM.</summary>
    private static void ConvForwardSamples<T>(Tensor x, Tensor weight, Tensor? bias, Tensor y, ConvGeometry geo, int groups, int start, int end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int o = weight.Size(0), og = o / groups, outPlane = geo.ColCols, k = geo.ColRows;
        int chunk = ChunkSamples(geo);
        var xs = x.Span<T>(); var ws = weight.Span<T>(); var ys = y.Span<T>();
        var col = ArrayPool<T>.Shared.Rent(k * chunk * outPlane);
        var outTmp = ArrayPool<T>.Shared.Rent(og * chunk * outPlane);
        try
        {
            for (int b0 = start; b0 < end; b0 += chunk)
            {
                int s = Math.Min(chunk, end - b0), cols = s * outPlane;
                for (int grp = 0; grp < groups; grp++)
                {
                    var wg = ws.Slice(grp * og * k, og * k);
                    if (s == 1 && IsPointwise(geo))
                    {
                        var image = xs.Slice((b0 * groups + grp) * k * outPlane, k * outPlane);
                        Gemm.Multiply<T>(false, false, og, outPlane, k, wg, image, ys.Slice((b0 * o + grp * og) * outPlane, og * outPlane), accumulate: false, maxThreads: 1);
                        continue;
                    }
                    UnfoldChunk<T>(xs, geo, groups, grp, b0, s, col);
                    if (s == 1)
                    {
                        Gemm.Multiply<T>(false, false, og, outPlane, k, wg, col.AsSpan(0, k * outPlane), ys.Slice((b0 * o + grp * og) * outPlane, og * outPlane), accumulate: false, maxThreads: 1);
                        continue;
                    }
                    var res = outTmp.AsSpan(0, og * cols);
                    Gemm.Multiply<T>(false, false, og, cols, k, wg, col.AsSpan(0, k * cols), res, accumulate: false, maxThreads: 1);
                    for (int i = 0; i < s; i++)
                        for (int oc = 0; oc < og; oc++)
                            res.Slice(oc * cols + i * outPlane, outPlane).CopyTo(ys.Slice(((b0 + i) * o + grp * og + oc) * outPlane, outPlane));
                }
                if (bias is not null)
                {
                    var bs = bias.Span<T>();
                    for (int b = b0; b < b0 + s; b++)
                        for (int ch = 0; ch < o; ch++)
                        {
                            var plane = ys.Slice((b * o + ch) * outPlane, outPlane);
                            TensorPrimitives.Add(plane, bs[ch], plane);
                        }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(col);
            ArrayPool<T>.Shared.Return(outTmp);
        }
    }

    /// <summary>The forward pass as an implicit GEMM over the padded image (<see cref="ShiftedConv"/>).</summary>
    private static void ConvForwardShifted(Tensor x, Tensor weight, Tensor? bias, Tensor y, ConvGeometry geo, int groups)
    {
        int og = weight.Size(0) / groups, taps = geo.ColRows;
        var plan = ShiftedConv.PlanFor(geo);
        bool direct = ShiftedConv.RunsDirect(plan);
        // The direct kernel reads plain [outputs, taps] rows; the tiled one its packed layout.
        int packedLength = direct ? og * taps : ShiftedConv.PackedLength(og, taps);
        var packed = ArrayPool<float>.Shared.Rent(groups * packedLength);
        try
        {
            var ws = weight.Span<float>();
            for (int grp = 0; grp < groups; grp++)
            {
                var rows = ws.Slice(grp * og * taps, og * taps);
                var target = packed.AsSpan(grp * packedLength, packedLength);
                if (direct) rows.CopyTo(target);
                else ShiftedConv.PackWeights(rows, og, taps, target);
            }
            RunShifted(plan, packed, packedLength, groups, x, y, og, bias, direct);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packed);
        }
    }

    /// <summary>
    /// The input gradient of a stride-1 convolution, itself a stride-1 convolution of the output gradient padded by
    /// d·(k − 1) − p with the weights flipped in space and transposed in channels; overwrites gx.
    /// </summary>
    private static void ConvInputGradientShifted(Tensor weight, Tensor g, Tensor gx, ConvGeometry geo, int groups)
    {
        int og = weight.Size(0) / groups, cg = geo.Channels;
        int padH = geo.DilationH * (geo.KernelH - 1) - geo.PadH, padW = geo.DilationW * (geo.KernelW - 1) - geo.PadW;
        var plan = ShiftedConv.PlanFor(og, geo.OutH, geo.OutW, geo.KernelH, geo.KernelW, 1, padH, padW, geo.DilationH, geo.DilationW);
        int packedLength = ShiftedConv.PackedLength(cg, plan.Taps);
        var packed = ArrayPool<float>.Shared.Rent(groups * packedLength);
        try
        {
            var ws = weight.Span<float>();
            for (int grp = 0; grp < groups; grp++)
                ShiftedConv.PackFlippedWeights(ws.Slice(grp * og * geo.ColRows, og * geo.ColRows), og, cg, geo.KernelH, geo.KernelW,
                    packed.AsSpan(grp * packedLength, packedLength));
            RunShifted(plan, packed, packedLength, groups, g, gx, cg, bias: null, direct: false);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packed);
        }
    }

    /// <summary>
    /// One shifted convolution pass over a batch, each group's weights packed in <paramref name="packed"/>: for every
    /// image and group, pads the source group [plan.Channels, H, W] and writes the target group [outputs, OH, OW]
    /// (plus the bias, when given). Source and target are [N, groups · channels, …] and [N, groups · outputs, …].
    /// With <paramref name="direct"/>, the packed weights are plain [outputs, taps] rows for
    /// <see cref="ShiftedConv.RunDirect"/>.
    /// </summary>
    private static void RunShifted(ShiftedConv.Plan plan, float[] packed, int packedLength, int groups, Tensor source, Tensor target,
        int outputs, Tensor? bias, bool direct) =>
        RunBySample(source.Size(0), ((plan, packed, packedLength, groups), (source, target, outputs, bias, direct)), static (s, _, start, end) =>
        {
            var ((plan, packed, packedLength, groups), (source, target, outputs, bias, direct)) = s;
            ShiftedSamples(plan, packed, packedLength, groups, source, target, outputs, bias, direct, start, end);
        });

    private static unsafe void ShiftedSamples(ShiftedConv.Plan plan, float[] packed, int packedLength, int groups, Tensor source, Tensor target,
        int outputs, Tensor? bias, bool direct, int start, int end)
    {
        int sourceGroup = plan.Channels * plan.Height * plan.Width, targetGroup = outputs * plan.OutH * plan.OutW;
        int outPlane = plan.OutH * plan.OutW;
        var padded = ArrayPool<float>.Shared.Rent(plan.PaddedLength);
        try
        {
            var xs = source.Span<float>();
            var ys = target.Span<float>();
            fixed (float* pp = padded, pw = packed, py = ys)
            {
                for (int b = start; b < end; b++)
                {
                    for (int grp = 0; grp < groups; grp++)
                    {
                        long at = (long)b * groups + grp;
                        ShiftedConv.Pad(xs.Slice((int)(at * sourceGroup), sourceGroup), plan, padded);
                        if (direct) ShiftedConv.RunDirect(plan, pp, pw + (long)grp * packedLength, outputs, py + at * targetGroup);
                        else ShiftedConv.Run(plan, pp, pw + (long)grp * packedLength, outputs, py + at * targetGroup);
                    }
                    if (bias is null) continue;
                    var bs = bias.Span<float>();
                    int channels = groups * outputs;
                    for (int ch = 0; ch < channels; ch++)
                    {
                        var plane = ys.Slice((b * channels + ch) * outPlane, outPlane);
                        TensorPrimitives.Add(plane, bs[ch], plane);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(padded);
        }
    }

    /// <summary>
    /// Where thread i's partial weight gradient of <paramref name="length"/> elements starts in the shared buffer:
    /// at i times this, which leaves at least a cache line between two threads' parts, so their accumulating writes
    /// never contend for one line.
    /// </summary>
    private static int PartialStride(int length) => (length + 31) & ~15;

    /// <summary>
    /// Adds the threads' partial weight gradients, thread i's at i·<see cref="PartialStride"/> in
    /// <paramref name="partials"/> and holding per group dWᵀ_g [k, og], into gw's layout [o, k], in thread order (so
    /// the sum does not depend on timing).
    /// </summary>
    private static void AddWeightGradientPartials<T>(T[] partials, int threads, Span<T> total, int groups, int og, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int length = groups * og * k;
        for (int t = 0; t < threads; t++)
        {
            var part = partials.AsSpan(t * PartialStride(length), length);
            for (int grp = 0; grp < groups; grp++)
                for (int ki = 0; ki < k; ki++)
                    for (int oi = 0; oi < og; oi++)
                        total[(grp * og + oi) * k + ki] += part[grp * og * k + ki * og + oi];
        }
    }

    /// <summary>
    /// The weight gradient as an implicit GEMM: dWᵀ_g [taps, og] = X̃ · dYᵀ, where row t of X̃ is the padded
    /// image read from tap t's offset (an A whose rows the GEMM reads in place) and dY is spread over the padded
    /// plane's columns with zeros where a row's padded tail lies.
    /// </summary>
    private static void ConvWeightGradientShifted(Tensor x, Tensor g, Tensor gw, ConvGeometry geo, int groups)
    {
        int n = x.Size(0), threads = ConvThreads(n);
        var partials = ArrayPool<float>.Shared.Rent(threads * PartialStride(gw.Length));
        try
        {
            RunBySample(n, (x, g, partials, geo, groups), static (s, id, start, end) =>
                WeightGradientShiftedSamples(s.x, s.g, s.partials, s.geo, s.groups, id, start, end));
            AddWeightGradientPartials(partials, threads, gw.Span<float>(), groups, g.Size(1) / groups, geo.ColRows);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partials);
        }
    }

    /// <summary>Thread <paramref name="id"/>'s partial weight gradient over samples [start, end).</summary>
    private static unsafe void WeightGradientShiftedSamples(Tensor x, Tensor g, float[] partials, ConvGeometry geo, int groups, int id, int start, int end)
    {
        int o = g.Size(1), og = o / groups, taps = geo.ColRows, outPlane = geo.ColCols;
        int inPlane = geo.Channels * geo.Height * geo.Width;
        var plan = ShiftedConv.PlanFor(geo);
        // Long rows: dot products along the plane, summed in vector lanes over the thread's images. Short ones: a
        // GEMM per image, whose fixed costs the lanes' load and store would otherwise outweigh.
        bool dots = plan.Columns >= ShiftedConv.DotProductFrom;
        int rowLength = dots ? ShiftedConv.SpreadLength(plan) : plan.Columns;
        int laneLength = dots ? ShiftedConv.LaneLength(og, taps) : 0;
        int length = groups * taps * og;
        var gwT = partials.AsSpan(id * PartialStride(length), length);
        gwT.Clear();
        var padded = ArrayPool<float>.Shared.Rent(plan.PaddedLength);
        var spread = ArrayPool<float>.Shared.Rent(og * rowLength + rowLength);
        var lanes = ArrayPool<float>.Shared.Rent(Math.Max(1, groups * laneLength));
        try
        {
            var xs = x.Span<float>();
            var gs = g.Span<float>();
            spread.AsSpan(og * rowLength, rowLength).Clear();   // a zero row for the dot products' missing outputs
            if (dots) lanes.AsSpan(0, groups * laneLength).Clear();
            fixed (float* pp = padded, pg = spread, pw = gwT, pl = lanes)
            fixed (int* starts = plan.Offsets)
            {
                for (int b = start; b < end; b++)
                    for (int grp = 0; grp < groups; grp++)
                    {
                        ShiftedConv.Pad(xs.Slice((b * groups + grp) * inPlane, inPlane), plan, padded);
                        ShiftedConv.Spread(gs.Slice((b * o + grp * og) * outPlane, og * outPlane), plan, og, rowLength, spread);
                        if (dots)
                            ShiftedConv.AccumulateWeightGradient(plan, pg, rowLength, og, pp, pg + (long)og * rowLength, pl + (long)grp * laneLength);
                        else
                            Sgemm.Multiply(false, true, taps, og, plan.Columns, pp, 0, pg, rowLength, pw + (long)grp * taps * og, og,
                                accumulate: true, maxThreads: 1, aRowStarts: starts);
                    }
                if (dots)
                    for (int grp = 0; grp < groups; grp++)
                        ShiftedConv.ReduceLanes(pl + (long)grp * laneLength, og, taps, pw + (long)grp * taps * og);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(padded);
            ArrayPool<float>.Shared.Return(spread);
            ArrayPool<float>.Shared.Return(lanes);
        }
    }

    private static void ConvBackward<T>(Tensor x, Tensor weight, Tensor g, Tensor? gx, Tensor? gw, Tensor? gb, ConvGeometry geo, int groups)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Size(0), o = weight.Size(0), og = o / groups, outPlane = geo.ColCols, k = geo.ColRows;
        // Each thread sums its samples' weight gradient transposed, dWᵀ[k, o] = col · dYᵀ, which lets the GEMM read
        // the column matrix in place; the partial sums are transposed into gw in thread order.
        int threads = ConvThreads(n);
        var partials = gw is null ? null : ArrayPool<T>.Shared.Rent(threads * PartialStride(gw.Length));
        try
        {
            if (gx is not null || gw is not null)
                RunBySample(n, (x, weight, g, gx, partials, geo, groups), static (s, id, start, end) =>
                    ConvBackwardSamples<T>(s.x, s.weight, s.g, s.gx, s.partials, s.geo, s.groups, id, start, end));
            if (gw is not null) AddWeightGradientPartials(partials!, threads, gw.Span<T>(), groups, og, k);
        }
        finally
        {
            if (partials is not null) ArrayPool<T>.Shared.Return(partials);
        }
        if (gb is not null)
        {
            var bs = gb.Span<T>();
            var gs = g.Span<T>();
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < o; ch++) bs[ch] += TensorPrimitives.Sum<T>(gs.Slice((b * o + ch) * outPlane, outPlane));
        }
    }

    /// <summary>
    /// The column-matrix backward pass of samples [start, end): folds their input gradient into gx (when given) and
    /// sums thread <paramref name="id"/>'s part of the weight gradient into <paramref name="partials"/> (when given).
    /// </summary>
    private static void ConvBackwardSamples<T>(Tensor x, Tensor weight, Tensor g, Tensor? gx, T[]? partials, ConvGeometry geo, int groups,
        int id, int start, int end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int o = weight.Size(0), og = o / groups, outPlane = geo.ColCols, k = geo.ColRows;
        int inPlane = geo.Channels * geo.Height * geo.Width;
        int chunk = ChunkSamples(geo);
        var xs = x.Span<T>(); var ws = weight.Span<T>(); var gs = g.Span<T>();
        // Zeroed because the GEMMs accumulate into it.
        var gwT = partials is null ? default : partials.AsSpan(id * PartialStride(weight.Length), weight.Length);
        gwT.Clear();
        // Each thread zeroes the images it folds into, so no serial pass touches all of gx before the threads do.
        if (gx is not null) gx.Span<T>().Slice(start * groups * inPlane, (end - start) * groups * inPlane).Clear();
        var col = ArrayPool<T>.Shared.Rent(k * chunk * outPlane);
        var gTmp = ArrayPool<T>.Shared.Rent(og * chunk * outPlane);
        try
        {
            for (int b0 = start; b0 < end; b0 += chunk)
            {
                int s = Math.Min(chunk, end - b0), cols = s * outPlane;
                for (int grp = 0; grp < groups; grp++)
                {
                    // dY of the chunk as [og, s·OH·OW].
                    ReadOnlySpan<T> gChunk;
                    if (s == 1)
                    {
                        gChunk = gs.Slice((b0 * o + grp * og) * outPlane, og * outPlane);
                    }
                    else
                    {
                        var dst = gTmp.AsSpan(0, og * cols);
                        for (int i = 0; i < s; i++)
                            for (int oc = 0; oc < og; oc++)
                                gs.Slice(((b0 + i) * o + grp * og + oc) * outPlane, outPlane).CopyTo(dst.Slice(oc * cols + i * outPlane, outPlane));
                        gChunk = dst;
                    }
                    var colSpan = col.AsSpan(0, k * cols);
                    if (partials is not null)
                    {
                        // dWᵀ_g += col · dY_gᵀ
                        UnfoldChunk<T>(xs, geo, groups, grp, b0, s, colSpan);
                        Gemm.Multiply<T>(false, true, k, og, cols, colSpan, gChunk, gwT.Slice(grp * og * k, og * k), accumulate: true, maxThreads: 1);
                    }
                    if (gx is not null)
                    {
                        // dcol = W_gᵀ · dY_g, folded back onto each input image.
                        Gemm.Multiply<T>(true, false, k, cols, og, ws.Slice(grp * og * k, og * k), gChunk, colSpan, accumulate: false, maxThreads: 1);
                        var gxs = gx.Span<T>();
                        for (int i = 0; i < s; i++)
                        {
                            var gImage = gxs.Slice(((b0 + i) * groups + grp) * inPlane, inPlane);
                            if (IsPointwise(geo))
                            {
                                for (int r = 0; r < k; r++)
                                {
                                    var d = gImage.Slice(r * outPlane, outPlane);
                                    TensorPrimitives.Add(d, colSpan.Slice(r * cols + i * outPlane, outPlane), d);
                                }
                            }
                            else
                            {
                                Im2Col.FoldAdd<T>(colSpan[(i * outPlane)..], cols, geo, gImage);
                            }
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(col);
            ArrayPool<T>.Shared.Return(gTmp);
        }
    }
}
