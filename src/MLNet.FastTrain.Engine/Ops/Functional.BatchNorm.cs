using System.Numerics;
using MLNet.FastTrain.Engine.Autograd;

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
    /// In evaluation the running statistics are used and the batch does not change them.
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
            for (int ch = 0; ch < c; ch++)
            {
                double sum = 0, sq = 0;
                for (int b = 0; b < n; b++)
                {
                    int start = (b * c + ch) * plane;
                    for (int i = 0; i < plane; i++) sum += x.GetFlat(start + i);
                }
                double mu = sum / count;
                for (int b = 0; b < n; b++)
                {
                    int start = (b * c + ch) * plane;
                    for (int i = 0; i < plane; i++) { double d = x.GetFlat(start + i) - mu; sq += d * d; }
                }
                double variance = sq / count;
                mean[ch] = mu;
                invStd[ch] = 1.0 / Math.Sqrt(variance + eps);
                if (runningMean is not null) runningMean.SetFlat(ch, (1 - momentum) * runningMean.GetFlat(ch) + momentum * mu);
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

        var y = Tensor.ZerosLike(x);
        if (IsF32(x)) BatchNormApply<float>(x.Span<float>(), y.Span<float>(), weight, bias, mean, invStd, n, c, plane);
        else BatchNormApply<double>(x.Span<double>(), y.Span<double>(), weight, bias, mean, invStd, n, c, plane);

        var inputs = new List<Tensor> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        return GradRecorder.Record(y, "batch_norm2d", [.. inputs], g =>
        {
            var gx = x.RequiresGrad ? Tensor.ZerosLike(x) : null;
            var gw = weight is not null && weight.RequiresGrad ? Tensor.ZerosLike(weight) : null;
            var gb = bias is not null && bias.RequiresGrad ? Tensor.ZerosLike(bias) : null;
            for (int ch = 0; ch < c; ch++)
            {
                double gamma = weight?.GetFlat(ch) ?? 1.0;
                double sumG = 0, sumGXhat = 0;
                for (int b = 0; b < n; b++)
                {
                    int start = (b * c + ch) * plane;
                    for (int i = 0; i < plane; i++)
                    {
                        double gv = g.GetFlat(start + i);
                        sumG += gv;
                        sumGXhat += gv * (x.GetFlat(start + i) - mean[ch]) * invStd[ch];
                    }
                }
                gw?.SetFlat(ch, sumGXhat);
                gb?.SetFlat(ch, sumG);
                if (gx is null) continue;
                // Training: dx = γ·invstd/M · (M·g − Σg − x̂·Σ(g·x̂)); evaluation: dx = γ·invstd·g.
                double scale = gamma * invStd[ch];
                for (int b = 0; b < n; b++)
                {
                    int start = (b * c + ch) * plane;
                    for (int i = 0; i < plane; i++)
                    {
                        double gv = g.GetFlat(start + i);
                        double d = training
                            ? scale * (gv - sumG / count - (x.GetFlat(start + i) - mean[ch]) * invStd[ch] * sumGXhat / count)
                            : scale * gv;
                        gx.SetFlat(start + i, d);
                    }
                }
            }
            var grads = new List<Tensor?> { gx };
            if (weight is not null) grads.Add(gw);
            if (bias is not null) grads.Add(gb);
            return [.. grads];
        });
    }

    private static void BatchNormApply<T>(ReadOnlySpan<T> x, Span<T> y, Tensor? weight, Tensor? bias, double[] mean, double[] invStd, int n, int c, int plane)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int ch = 0; ch < c; ch++)
        {
            // y = x·scale + shift with scale = γ·invstd and shift = β − μ·scale.
            double scale = (weight?.GetFlat(ch) ?? 1.0) * invStd[ch];
            double shift = (bias?.GetFlat(ch) ?? 0.0) - mean[ch] * scale;
            T s = T.CreateTruncating(scale), sh = T.CreateTruncating(shift);
            for (int b = 0; b < n; b++)
            {
                int start = (b * c + ch) * plane;
                var dst = y.Slice(start, plane);
                System.Numerics.Tensors.TensorPrimitives.Multiply(x.Slice(start, plane), s, dst);
                System.Numerics.Tensors.TensorPrimitives.Add(dst, sh, dst);
            }
        }
    }
}
