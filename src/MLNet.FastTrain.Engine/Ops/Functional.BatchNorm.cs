using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Kernels;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>
    /// Batch normalisation of x [N, C, H, W] per channel (Ioffe and Szegedy, 2015):
    /// y = (x − μ) / √(σ² + eps) · weight + bias.
    /// </summary>
    /// <remarks>
    /// In training μ and σ² (biased) come from the batch, and the running statistics, when given, move towards
    /// them: running = (1 − momentum)·running + momentum·batch, with the unbiased variance, as torch does.
    /// In evaluation the running statistics are used and the batch does not change them. Per-plane sums are taken
    /// in the element type and combined across planes in double precision.
    /// </remarks>
    public static Tensor BatchNorm2d(Tensor x, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        bool training, double momentum = 0.1, double eps = 1e-5)
    {
        CheckRank("batch_norm2d", "input", x, 4);
        int n = x.Size(0), c = x.Size(1), plane = x.Size(2) * x.Size(3);
        int count = n * plane;
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar) })
            if (t is not null && (t.Rank != 1 || t.Size(0) != c))
                throw ShapeMismatchException.For("batch_norm2d", $"{name} must be [channels]", t.Shape, x.Shape);
        if (!training && (runningMean is null || runningVar is null))
            throw new InvalidOperationException("batch_norm2d: evaluation mode needs running statistics.");
        if (training && count < 2)
            throw new ArgumentException($"batch_norm2d: training needs more than one value per channel; input shape is {ShapeText.Format(x.Shape)}.", nameof(x));

        var mean = new double[c];
        var invStd = new double[c];
        if (training)
        {
            ParallelRanges.For(c, Math.Max(1, ParallelRanges.ElementwiseGrain / Math.Max(1, count)), (c0, c1) =>
            {
                if (IsF32(x)) BatchStatistics<float>(x.Span<float>(), n, c, plane, mean, invStd, eps, c0, c1);
                else BatchStatistics<double>(x.Span<double>(), n, c, plane, mean, invStd, eps, c0, c1);
            });
            for (int ch = 0; ch < c; ch++)
            {
                double variance = 1.0 / (invStd[ch] * invStd[ch]) - eps;
                if (runningMean is not null) runningMean.SetFlat(ch, (1 - momentum) * runningMean.GetFlat(ch) + momentum * mean[ch]);
                if (runningVar is not null) runningVar.SetFlat(ch, (1 - momentum) * runningVar.GetFlat(ch) + momentum * variance * count / (count - 1));
            }
        }
        else
        {
            for (int ch = 0; ch < c; ch++)
            {
                mean[ch] = runningMean!.GetFlat(ch);
                invStd[ch] = 1.0 / Math.Sqrt(runningVar!.GetFlat(ch) + eps);
            }
        }

        var y = Tensor.EmptyLike(x);
        ParallelRanges.For(c, Math.Max(1, ParallelRanges.ElementwiseGrain / Math.Max(1, count)), (c0, c1) =>
        {
            if (IsF32(x)) BatchNormApply<float>(x.Span<float>(), y.Span<float>(), weight, bias, mean, invStd, n, c, plane, c0, c1);
            else BatchNormApply<double>(x.Span<double>(), y.Span<double>(), weight, bias, mean, invStd, n, c, plane, c0, c1);
        });

        var inputs = new List<Tensor> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        return GradRecorder.Record(y, "batch_norm2d", [.. inputs], g =>
        {
            var gx = x.RequiresGrad ? Tensor.EmptyLike(x) : null;
            var gw = weight is not null && weight.RequiresGrad ? Tensor.ZerosLike(weight) : null;
            var gb = bias is not null && bias.RequiresGrad ? Tensor.ZerosLike(bias) : null;
            ParallelRanges.For(c, Math.Max(1, ParallelRanges.ElementwiseGrain / Math.Max(1, count)), (c0, c1) =>
            {
                if (IsF32(x)) BatchNormBackward<float>(x, g, gx, gw, gb, weight, mean, invStd, n, c, plane, training, c0, c1);
                else BatchNormBackward<double>(x, g, gx, gw, gb, weight, mean, invStd, n, c, plane, training, c0, c1);
            });
            var grads = new List<Tensor?> { gx };
            if (weight is not null) grads.Add(gw);
            if (bias is not null) grads.Add(gb);
            return [.. grads];
        });
    }

    private static void BatchStatistics<T>(ReadOnlySpan<T> x, int n, int c, int plane, double[] mean, double[] invStd, double eps, int c0, int c1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int count = n * plane;
        for (int ch = c0; ch < c1; ch++)
        {
            double sum = 0;
            for (int b = 0; b < n; b++) sum += double.CreateTruncating(TensorPrimitives.Sum(x.Slice((b * c + ch) * plane, plane)));
            double mu = sum / count;
            double sq = 0;
            T muT = T.CreateTruncating(mu);
            for (int b = 0; b < n; b++) sq += double.CreateTruncating(Fused.SumSquaredDeviation(x.Slice((b * c + ch) * plane, plane), muT));
            mean[ch] = mu;
            invStd[ch] = 1.0 / Math.Sqrt(sq / count + eps);
        }
    }

    private static void BatchNormApply<T>(ReadOnlySpan<T> x, Span<T> y, Tensor? weight, Tensor? bias, double[] mean, double[] invStd, int n, int c, int plane, int c0, int c1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int ch = c0; ch < c1; ch++)
        {
            // y = x·scale + shift with scale = γ·invstd and shift = β − μ·scale.
            double scale = (weight?.GetFlat(ch) ?? 1.0) * invStd[ch];
            double shift = (bias?.GetFlat(ch) ?? 0.0) - mean[ch] * scale;
            T s = T.CreateTruncating(scale), sh = T.CreateTruncating(shift);
            for (int b = 0; b < n; b++)
            {
                int start = (b * c + ch) * plane;
                Fused.ScaleShift(x.Slice(start, plane), s, sh, y.Slice(start, plane));
            }
        }
    }

    private static void BatchNormBackward<T>(Tensor x, Tensor g, Tensor? gx, Tensor? gw, Tensor? gb, Tensor? weight,
        double[] mean, double[] invStd, int n, int c, int plane, bool training, int c0, int c1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xs = x.Span<T>();
        var gs = g.Span<T>();
        int count = n * plane;
        for (int ch = c0; ch < c1; ch++)
        {
            double sumG = 0, sumGX = 0;
            for (int b = 0; b < n; b++)
            {
                int start = (b * c + ch) * plane;
                sumG += double.CreateTruncating(TensorPrimitives.Sum(gs.Slice(start, plane)));
                sumGX += double.CreateTruncating(TensorPrimitives.Dot(gs.Slice(start, plane), xs.Slice(start, plane)));
            }
            // Σ g·x̂ = invstd·(Σ g·x − μ·Σ g)
            double sumGXhat = invStd[ch] * (sumGX - mean[ch] * sumG);
            gw?.SetFlat(ch, sumGXhat);
            gb?.SetFlat(ch, sumG);
            if (gx is null) continue;
            // Training: dx = γ·invstd·(g − Σg/M − x̂·Σ(g·x̂)/M), written as a·g + b·x + c.
            // Evaluation: dx = γ·invstd·g.
            double scale = (weight?.GetFlat(ch) ?? 1.0) * invStd[ch];
            double a = scale, bx = 0, cx = 0;
            if (training)
            {
                bx = -scale * invStd[ch] * sumGXhat / count;
                cx = -scale * sumG / count - bx * mean[ch];
            }
            T ta = T.CreateTruncating(a), tb = T.CreateTruncating(bx), tc = T.CreateTruncating(cx);
            var dxs = gx.Span<T>();
            for (int b = 0; b < n; b++)
            {
                int start = (b * c + ch) * plane;
                Fused.Affine2(gs.Slice(start, plane), ta, xs.Slice(start, plane), tb, tc, dxs.Slice(start, plane));
            }
        }
    }
}
