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
        if (IsF32(x)) ConvForward<float>(x, weight, bias, y, geo, groups); else ConvForward<double>(x, weight, bias, y, geo, groups);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        return GradRecorder.Record(y, "conv2d", inputs, g =>
        {
            Tensor? gx = x.RequiresGrad ? Tensor.ZerosLike(x) : null;
            Tensor? gw = weight.RequiresGrad ? Tensor.ZerosLike(weight) : null;
            Tensor? gb = bias is not null && bias.RequiresGrad ? Tensor.ZerosLike(bias) : null;
            if (IsF32(x)) ConvBackward<float>(x, weight, g, gx, gw, gb, geo, groups);
            else ConvBackward<double>(x, weight, g, gx, gw, gb, geo, groups);
            return [gx, gw, gb];
        });
    }

    // Samples are split into one contiguous range per thread; each thread runs single-threaded GEMMs on its own
    // samples, so every output element is computed by one thread in a fixed order. Weight gradients are summed per
    // thread and the partial sums are added in thread order: identical results for a given thread count.

    private static int ConvThreads(int samples) => Math.Max(1, Math.Min(EngineSettings.Threads, samples));

    private static (int Start, int End) SampleRange(int samples, int threads, int id) =>
        ((int)((long)samples * id / threads), (int)((long)samples * (id + 1) / threads));

    /// <summary>True when the column matrix of one image group is the image itself (1×1 kernel, stride 1, no padding).</summary>
    private static bool IsPointwise(in ConvGeometry g) =>
        g.KernelH == 1 && g.KernelW == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 0 && g.PadW == 0;

    private static void ConvForward<T>(Tensor x, Tensor weight, Tensor? bias, Tensor y, ConvGeometry geo, int groups)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Size(0);
        int threads = ConvThreads(n);
        if (threads == 1) { ConvForwardRange<T>(x, weight, bias, y, geo, groups, 0, n); return; }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, id =>
        {
            var (start, end) = SampleRange(n, threads, id);
            ConvForwardRange<T>(x, weight, bias, y, geo, groups, start, end);
        });
    }

    private static void ConvForwardRange<T>(Tensor x, Tensor weight, Tensor? bias, Tensor y, ConvGeometry geo, int groups, int start, int end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int o = weight.Size(0), og = o / groups;
        int inPlane = geo.Channels * geo.Height * geo.Width, outPlane = geo.ColCols, k = geo.ColRows;
        var xs = x.Span<T>(); var ws = weight.Span<T>(); var ys = y.Span<T>();
        bool pointwise = IsPointwise(geo);
        T[] col = pointwise ? [] : ArrayPool<T>.Shared.Rent(k * outPlane);
        try
        {
            for (int b = start; b < end; b++)
            {
                for (int grp = 0; grp < groups; grp++)
                {
                    var image = xs.Slice((b * groups + grp) * inPlane, inPlane);
                    ReadOnlySpan<T> colSpan = image;
                    if (!pointwise)
                    {
                        Im2Col.Unfold(image, geo, col.AsSpan(0, k * outPlane));
                        colSpan = col.AsSpan(0, k * outPlane);
                    }
                    var dst = ys.Slice((b * o + grp * og) * outPlane, og * outPlane);
                    Gemm.Multiply<T>(false, false, og, outPlane, k, ws.Slice(grp * og * k, og * k), colSpan, dst, accumulate: false, maxThreads: 1);
                }
                if (bias is not null)
                {
                    var bs = bias.Span<T>();
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
            if (!pointwise) ArrayPool<T>.Shared.Return(col);
        }
    }

    private static void ConvBackward<T>(Tensor x, Tensor weight, Tensor g, Tensor? gx, Tensor? gw, Tensor? gb, ConvGeometry geo, int groups)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Size(0);
        int threads = ConvThreads(n);
        // Each thread sums its samples' weight gradient transposed, dWᵀ[k, o] = col · dYᵀ, which lets the GEMM read
        // the column matrix in place; the partial sums are transposed into gw in thread order.
        var partials = gw is null ? null : new T[threads][];
        if (threads == 1)
        {
            if (partials is not null) partials[0] = new T[gw!.Length];
            ConvBackwardRange<T>(x, weight, g, gx, partials?[0], geo, groups, 0, n);
        }
        else
        {
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, id =>
            {
                var (start, end) = SampleRange(n, threads, id);
                T[]? target = partials is null ? null : partials[id] = new T[gw!.Length];
                ConvBackwardRange<T>(x, weight, g, gx, target, geo, groups, start, end);
            });
        }
        if (gw is not null)
        {
            // partials hold, per group, dWᵀ_g [k, og]; gw holds W's layout [o, k].
            int o = weight.Size(0), og = o / groups, k = geo.ColRows;
            var total = gw.Span<T>();
            foreach (var part in partials!)
                for (int grp = 0; grp < groups; grp++)
                    for (int ki = 0; ki < k; ki++)
                        for (int oi = 0; oi < og; oi++)
                            total[(grp * og + oi) * k + ki] += part[grp * og * k + ki * og + oi];
        }
        if (gb is not null)
        {
            var bs = gb.Span<T>();
            var gs = g.Span<T>();
            int o = weight.Size(0), outPlane = geo.ColCols;
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < o; ch++) bs[ch] += TensorPrimitives.Sum<T>(gs.Slice((b * o + ch) * outPlane, outPlane));
        }
    }

    private static void ConvBackwardRange<T>(Tensor x, Tensor weight, Tensor g, Tensor? gx, T[]? gwT, ConvGeometry geo, int groups, int start, int end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int o = weight.Size(0), og = o / groups;
        int inPlane = geo.Channels * geo.Height * geo.Width, outPlane = geo.ColCols, k = geo.ColRows;
        var xs = x.Span<T>(); var ws = weight.Span<T>(); var gs = g.Span<T>();
        bool pointwise = IsPointwise(geo);
        var col = ArrayPool<T>.Shared.Rent(k * outPlane);
        try
        {
            var colSpan = col.AsSpan(0, k * outPlane);
            for (int b = start; b < end; b++)
            {
                for (int grp = 0; grp < groups; grp++)
                {
                    var gOut = gs.Slice((b * o + grp * og) * outPlane, og * outPlane);
                    var image = xs.Slice((b * groups + grp) * inPlane, inPlane);
                    if (gwT is not null)
                    {
                        // dWᵀ_g += col · dY_gᵀ
                        ReadOnlySpan<T> cols = image;
                        if (!pointwise)
                        {
                            Im2Col.Unfold(image, geo, colSpan);
                            cols = colSpan;
                        }
                        Gemm.Multiply<T>(false, true, k, og, outPlane, cols, gOut, gwT.AsSpan(grp * og * k, og * k), accumulate: true, maxThreads: 1);
                    }
                    if (gx is not null)
                    {
                        // dcol = W_gᵀ · dY_g, folded back onto the input image (for a 1×1 stride-1 kernel it is the image gradient).
                        var gImage = gx.Span<T>().Slice((b * groups + grp) * inPlane, inPlane);
                        if (pointwise)
                        {
                            Gemm.Multiply<T>(true, false, k, outPlane, og, ws.Slice(grp * og * k, og * k), gOut, gImage, accumulate: true, maxThreads: 1);
                        }
                        else
                        {
                            Gemm.Multiply<T>(true, false, k, outPlane, og, ws.Slice(grp * og * k, og * k), gOut, colSpan, accumulate: false, maxThreads: 1);
                            Im2Col.FoldAdd<T>(colSpan, geo, gImage);
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(col);
        }
    }
}
