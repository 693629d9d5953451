using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Kernels;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>
    /// Max pooling of x [N, C, H, W] over kernel windows (stride defaults to the kernel; padding counts as −∞).
    /// The gradient goes to the first maximum of each window.
    /// </summary>
    public static Tensor MaxPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null)
    {
        var p = PoolParams("max_pool2d", x, kernel, stride, padding);
        var y = Tensor.Empty([p.N, p.C, p.OH, p.OW], x.DType);
        ForEachPlane(p, (x, y), static (s, p, a, b) =>
        {
            if (IsF32(s.x)) MaxPoolPlanes<float>(s.x.Span<float>(), s.y.Span<float>(), p, a, b);
            else MaxPoolPlanes<double>(s.x.Span<double>(), s.y.Span<double>(), p, a, b);
        });
        return GradRecorder.Record(y, "max_pool2d", [x], (x, p), static (s, g, grads) =>
        {
            // The winner of each window is found again rather than stored, which saves an index array per call.
            var gx = Tensor.ZerosLike(s.x);
            ForEachPlane(s.p, (s.x, g, gx), static (s, p, a, b) =>
            {
                if (IsF32(s.x)) MaxPoolBackwardPlanes<float>(s.x.Span<float>(), s.g.Span<float>(), s.gx.Span<float>(), p, a, b);
                else MaxPoolBackwardPlanes<double>(s.x.Span<double>(), s.g.Span<double>(), s.gx.Span<double>(), p, a, b);
            });
            grads[0] = gx;
        });
    }

    /// <summary>Runs <paramref name="body"/>(state, geometry, first, last) over [N·C) planes split into one fixed range per thread.</summary>
    private static void ForEachPlane<TState>(PoolGeometry p, TState state, Action<TState, PoolGeometry, int, int> body)
    {
        int planes = p.N * p.C;
        int minPlanes = Math.Max(1, 16384 / Math.Max(1, p.H * p.W));
        ParallelRanges.For(planes, minPlanes, (state, body, p), static (s, first, last) => s.body(s.state, s.p, first, last));
    }

    private static void MaxPoolPlanes<T>(ReadOnlySpan<T> x, Span<T> y, PoolGeometry p, int first, int last) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = p.H * p.W, outPlane = p.OH * p.OW;
        for (int plane = first; plane < last; plane++)
        {
            var src = x.Slice(plane * inPlane, inPlane);
            var dst = y.Slice(plane * outPlane, outPlane);
            for (int oy = 0; oy < p.OH; oy++)
                for (int ox = 0; ox < p.OW; ox++)
                    dst[oy * p.OW + ox] = src[WindowArgmax(src, p, oy, ox)];
        }
    }

    private static void MaxPoolBackwardPlanes<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> g, Span<T> gx, PoolGeometry p, int first, int last)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = p.H * p.W, outPlane = p.OH * p.OW;
        for (int plane = first; plane < last; plane++)
        {
            var src = x.Slice(plane * inPlane, inPlane);
            var dst = gx.Slice(plane * inPlane, inPlane);
            for (int oy = 0; oy < p.OH; oy++)
                for (int ox = 0; ox < p.OW; ox++)
                {
                    int o = plane * outPlane + oy * p.OW + ox;
                    dst[WindowArgmax(src, p, oy, ox)] += g[o];
                }
        }
    }

    /// <summary>The flat index of the first maximum (NaN counts as the maximum) of one pooling window.</summary>
    private static int WindowArgmax<T>(ReadOnlySpan<T> src, PoolGeometry p, int oy, int ox) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int y0 = oy * p.SH - p.PH, x0 = ox * p.SW - p.PW;
        int yStart = Math.Max(y0, 0), yEnd = Math.Min(y0 + p.KH, p.H);
        int xStart = Math.Max(x0, 0), xEnd = Math.Min(x0 + p.KW, p.W);
        int bestAt = yStart * p.W + xStart;
        T best = src[bestAt];
        for (int iy = yStart; iy < yEnd; iy++)
            for (int ix = xStart; ix < xEnd; ix++)
            {
                T v = src[iy * p.W + ix];
                if (v > best || (T.IsNaN(v) && !T.IsNaN(best))) { best = v; bestAt = iy * p.W + ix; }
            }
        return bestAt;
    }

    /// <summary>
    /// Average pooling of x [N, C, H, W]. With <paramref name="countIncludePad"/> (torch's default) the divisor is
    /// the window's area including padding; otherwise only the pixels inside the image count.
    /// </summary>
    public static Tensor AvgPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null, bool countIncludePad = true)
    {
        var p = PoolParams("avg_pool2d", x, kernel, stride, padding);
        var y = Tensor.Zeros([p.N, p.C, p.OH, p.OW], x.DType);
        ForEachWindow(p, countIncludePad, (plane, o, y0, y1, x0, x1, divisor) =>
        {
            double sum = 0;
            for (int iy = y0; iy < y1; iy++) for (int ix = x0; ix < x1; ix++) sum += x.GetFlat(plane * p.H * p.W + iy * p.W + ix);
            y.SetFlat(plane * p.OH * p.OW + o, sum / divisor);
        });
        return GradRecorder.Record(y, "avg_pool2d", [x], g =>
        {
            var gx = Tensor.ZerosLike(x);
            ForEachWindow(p, countIncludePad, (plane, o, y0, y1, x0, x1, divisor) =>
            {
                double share = g.GetFlat(plane * p.OH * p.OW + o) / divisor;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                    {
                        int at = plane * p.H * p.W + iy * p.W + ix;
                        gx.SetFlat(at, gx.GetFlat(at) + share);
                    }
            });
            return [gx];
        });
    }

    /// <summary>
    /// Adaptive average pooling to a fixed output size: output cell i covers input rows
    /// [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉), and likewise for columns, so any input size gives the same output size.
    /// </summary>
    public static Tensor AdaptiveAvgPool2d(Tensor x, (int H, int W) outputSize)
    {
        CheckRank("adaptive_avg_pool2d", "input", x, 4);
        var (oh, ow) = outputSize;
        if (oh < 1 || ow < 1) throw new ArgumentOutOfRangeException(nameof(outputSize), $"adaptive_avg_pool2d: output size ({oh}, {ow}) must be positive.");
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        if (h < 1 || w < 1) throw new ShapeMismatchException($"adaptive_avg_pool2d: input {ShapeText.Format(x.Shape)} has an empty spatial dimension.");
        var y = Tensor.Empty([n, c, oh, ow], x.DType);
        int planes = n * c, grain = Math.Max(1, ParallelRanges.ElementwiseGrain / (h * w));
        ParallelRanges.For(planes, grain, (x, y, h, w, oh, ow), static (s, p0, p1) =>
        {
            if (IsF32(s.x)) AdaptiveAvgPlanes<float>(s.x.Span<float>(), s.y.Span<float>(), s.h, s.w, s.oh, s.ow, p0, p1);
            else AdaptiveAvgPlanes<double>(s.x.Span<double>(), s.y.Span<double>(), s.h, s.w, s.oh, s.ow, p0, p1);
        });
        return GradRecorder.Record(y, "adaptive_avg_pool2d", [x], (x, planes, grain, (h, w, oh, ow)), static (s, g, grads) =>
        {
            var gx = Tensor.ZerosLike(s.x);
            var (h, w, oh, ow) = s.Item4;
            ParallelRanges.For(s.planes, s.grain, (g, gx, h, w, oh, ow), static (s, p0, p1) =>
            {
                if (IsF32(s.g)) AdaptiveAvgBackwardPlanes<float>(s.g.Span<float>(), s.gx.Span<float>(), s.h, s.w, s.oh, s.ow, p0, p1);
                else AdaptiveAvgBackwardPlanes<double>(s.g.Span<double>(), s.gx.Span<double>(), s.h, s.w, s.oh, s.ow, p0, p1);
            });
            grads[0] = gx;
        });
    }

    // Output cell (i, j) covers rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) and columns [⌊j·W/OW⌋, ⌈(j+1)·W/OW⌉).
    private static (int Start, int End) AdaptiveWindow(int i, int size, int outSize) => (i * size / outSize, ((i + 1) * size + outSize - 1) / outSize);

    private static void AdaptiveAvgPlanes<T>(ReadOnlySpan<T> x, Span<T> y, int h, int w, int oh, int ow, int p0, int p1) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int plane = p0; plane < p1; plane++)
        {
            var src = x.Slice(plane * h * w, h * w);
            if (oh == 1 && ow == 1)
            {
                y[plane] = TensorPrimitives.Sum(src) / T.CreateTruncating(h * w);
                continue;
            }
            for (int i = 0; i < oh; i++)
            {
                var (y0, y1) = AdaptiveWindow(i, h, oh);
                for (int j = 0; j < ow; j++)
                {
                    var (x0, x1) = AdaptiveWindow(j, w, ow);
                    T sum = T.Zero;
                    for (int iy = y0; iy < y1; iy++) sum += TensorPrimitives.Sum(src.Slice(iy * w + x0, x1 - x0));
                    y[plane * oh * ow + i * ow + j] = sum / T.CreateTruncating((y1 - y0) * (x1 - x0));
                }
            }
        }
    }

    private static void AdaptiveAvgBackwardPlanes<T>(ReadOnlySpan<T> g, Span<T> gx, int h, int w, int oh, int ow, int p0, int p1) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int plane = p0; plane < p1; plane++)
        {
            var dst = gx.Slice(plane * h * w, h * w);
            for (int i = 0; i < oh; i++)
            {
                var (y0, y1) = AdaptiveWindow(i, h, oh);
                for (int j = 0; j < ow; j++)
                {
                    var (x0, x1) = AdaptiveWindow(j, w, ow);
                    T share = g[plane * oh * ow + i * ow + j] / T.CreateTruncating((y1 - y0) * (x1 - x0));
                    for (int iy = y0; iy < y1; iy++)
                    {
                        var row = dst.Slice(iy * w + x0, x1 - x0);
                        TensorPrimitives.Add(row, share, row);
                    }
                }
            }
        }
    }

    private readonly record struct PoolGeometry(int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW)
    {
        public int OH => (H + 2 * PH - KH) / SH + 1;

        public int OW => (W + 2 * PW - KW) / SW + 1;
    }

    private static PoolGeometry PoolParams(string op, Tensor x, (int H, int W) kernel, (int H, int W)? stride, (int H, int W)? padding)
    {
        CheckRank(op, "input", x, 4);
        var (sh, sw) = stride ?? kernel;
        var (ph, pw) = padding ?? (0, 0);
        if (kernel.H < 1 || kernel.W < 1 || sh < 1 || sw < 1)
            throw new ArgumentOutOfRangeException(nameof(kernel), $"{op}: kernel ({kernel.H}, {kernel.W}) and stride ({sh}, {sw}) must be positive.");
        if (ph < 0 || pw < 0 || ph * 2 > kernel.H || pw * 2 > kernel.W)
            throw new ArgumentOutOfRangeException(nameof(padding), $"{op}: padding ({ph}, {pw}) must be between 0 and half the kernel ({kernel.H}, {kernel.W}).");
        var p = new PoolGeometry(x.Size(0), x.Size(1), x.Size(2), x.Size(3), kernel.H, kernel.W, sh, sw, ph, pw);
        if (p.OH < 1 || p.OW < 1)
            throw new ShapeMismatchException($"{op}: kernel ({kernel.H}, {kernel.W}) does not fit input {ShapeText.Format(x.Shape)} with padding ({ph}, {pw}).");
        return p;
    }

    private static void ForEachWindow(PoolGeometry p, bool countIncludePad, Action<int, int, int, int, int, int, int> body)
    {
        for (int plane = 0; plane < p.N * p.C; plane++)
            for (int oy = 0; oy < p.OH; oy++)
                for (int ox = 0; ox < p.OW; ox++)
                {
                    int y0 = oy * p.SH - p.PH, x0 = ox * p.SW - p.PW;
                    int y1 = Math.Min(y0 + p.KH, p.H + p.PH), x1 = Math.Min(x0 + p.KW, p.W + p.PW);
                    int padded = (y1 - y0) * (x1 - x0);
                    y0 = Math.Max(y0, 0); x0 = Math.Max(x0, 0);
                    y1 = Math.Min(y1, p.H); x1 = Math.Min(x1, p.W);
                    int divisor = countIncludePad ? padded : (y1 - y0) * (x1 - x0);
                    body(plane, oy * p.OW + ox, y0, y1, x0, x1, divisor);
                }
    }
}
