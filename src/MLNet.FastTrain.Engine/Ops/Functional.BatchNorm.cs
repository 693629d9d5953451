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
        bool training, double momentum = 0.1, double eps = 1e-5) =>
        BatchNormCore(x, runningMean, runningVar, weight, bias, training, momentum, eps, null, relu: false);

    /// <summary>
    /// relu(batch_norm2d(x) + residual), the residual optional: the normalisation, the residual sum (a ResNet
    /// block's shortcut) and the ReLU in one pass over memory forward and two backward, keeping only x and the output
    /// for the backward pass. Same statistics, running-statistics update and gradients as the three ops in turn.
    /// </summary>
    public static Tensor BatchNorm2dRelu(Tensor x, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        bool training, double momentum = 0.1, double eps = 1e-5, Tensor? residual = null) =>
        BatchNormCore(x, runningMean, runningVar, weight, bias, training, momentum, eps, residual, relu: true);

    private static Tensor BatchNormCore(Tensor x, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        bool training, double momentum, double eps, Tensor? residual, bool relu)
    {
        string op = !relu ? "batch_norm2d" : residual is null ? "batch_norm2d_relu" : "batch_norm2d_add_relu";
        CheckRank(op, "input", x, 4);
        int n = x.Size(0), c = x.Size(1), plane = x.Size(2) * x.Size(3);
        int count = n * plane;
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar) })
            if (t is not null && (t.Rank != 1 || t.Size(0) != c))
                throw ShapeMismatchException.For(op, $"{name} must be [channels]", t.Shape, x.Shape);
        if (residual is not null && !residual.Shape.SequenceEqual(x.Shape))
            throw ShapeMismatchException.For(op, "the residual must have the input's shape", residual.Shape, x.Shape);
        if (residual is not null && residual.DType != x.DType)
            throw new ArgumentException($"{op}: the residual is {residual.DType}, the input {x.DType}.", nameof(residual));
        if (!training && (runningMean is null || runningVar is null))
            throw new InvalidOperationException($"{op}: evaluation mode needs running statistics.");
        if (training && count < 2)
            throw new ArgumentException($"{op}: training needs more than one value per channel; input shape is {ShapeText.Format(x.Shape)}.", nameof(x));

        var mean = new double[c];
        var invStd = new double[c];
        int grain = Math.Max(1, ParallelRanges.ElementwiseGrain / Math.Max(1, count));
        if (training)
        {
            ParallelRanges.For(c, grain, (c0, c1) =>
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
        ParallelRanges.For(c, grain, (c0, c1) =>
        {
            if (IsF32(x)) BatchNormApply<float>(x.Span<float>(), residual is null ? default : residual.Span<float>(), relu, y.Span<float>(), weight, bias, mean, invStd, n, c, plane, c0, c1);
            else BatchNormApply<double>(x.Span<double>(), residual is null ? default : residual.Span<double>(), relu, y.Span<double>(), weight, bias, mean, invStd, n, c, plane, c0, c1);
        });

        var inputs = new List<Tensor> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        if (residual is not null) inputs.Add(residual);
        return GradRecorder.Record(y, op, [.. inputs], g =>
        {
            var gx = x.RequiresGrad ? Tensor.EmptyLike(x) : null;
            var gw = weight is not null && weight.RequiresGrad ? Tensor.ZerosLike(weight) : null;
            var gb = bias is not null && bias.RequiresGrad ? Tensor.ZerosLike(bias) : null;
            // With a ReLU, the gradient that reaches the sum is g where the output is positive; it is the residual's
            // gradient as it stands, and what the normalisation's backward starts from.
            var gz = !relu ? g : residual is not null && residual.RequiresGrad ? Tensor.EmptyLike(x) : gx ?? Tensor.EmptyLike(x);
            ParallelRanges.For(c, grain, (c0, c1) =>
            {
                if (IsF32(x)) BatchNormBackward<float>(x, relu ? y : null, g, gz, gx, gw, gb, weight, mean, invStd, n, c, plane, training, c0, c1);
                else BatchNormBackward<double>(x, relu ? y : null, g, gz, gx, gw, gb, weight, mean, invStd, n, c, plane, training, c0, c1);
            });
            var grads = new List<Tensor?> { gx };
            if (weight is not null) grads.Add(gw);
            if (bias is not null) grads.Add(gb);
            if (residual is not null) grads.Add(residual.RequiresGrad ? gz : null);
            return [.. grads];
        });
    }

    private static void BatchStatistics<T>(ReadOnlySpan<T> x, int n, int c, int plane, double[] mean, double[] invStd, double eps, int c0, int c1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Each plane's sum and squared deviation about its own mean (the second pass reads the plane from L1), then
        // Chan et al.'s combination in double: M2 = Σ M2ₚ + P·Σ (μₚ − μ)².
        int count = n * plane;
        Span<double> planeMeans = n <= 512 ? stackalloc double[n] : new double[n];
        for (int ch = c0; ch < c1; ch++)
        {
            double sum = 0, m2 = 0;
            for (int b = 0; b < n; b++)
            {
                var p = x.Slice((b * c + ch) * plane, plane);
                double s = double.CreateTruncating(TensorPrimitives.Sum(p));
                planeMeans[b] = s / plane;
                sum += s;
                m2 += double.CreateTruncating(Fused.SumSquaredDeviation(p, T.CreateTruncating(planeMeans[b])));
            }
            double mu = sum / count;
            for (int b = 0; b < n; b++) m2 += plane * (planeMeans[b] - mu) * (planeMeans[b] - mu);
            mean[ch] = mu;
            invStd[ch] = 1.0 / Math.Sqrt(m2 / count + eps);
        }
    }

    private static void BatchNormApply<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> residual, bool relu, Span<T> y, Tensor? weight, Tensor? bias,
        double[] mean, double[] invStd, int n, int c, int plane, int c0, int c1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int ch = c0; ch < c1; ch++)
        {
            // y = x·scale + shift with scale = γ·invstd and shift = β − μ·scale; then + residual and ReLU if asked.
            double scale = (weight?.GetFlat(ch) ?? 1.0) * invStd[ch];
            double shift = (bias?.GetFlat(ch) ?? 0.0) - mean[ch] * scale;
            T s = T.CreateTruncating(scale), sh = T.CreateTruncating(shift);
            for (int b = 0; b < n; b++)
            {
                int start = (b * c + ch) * plane;
                if (relu) Fused.ScaleShiftRelu(x.Slice(start, plane), s, sh, residual.IsEmpty ? default : residual.Slice(start, plane), y.Slice(start, plane));
                else Fused.ScaleShift(x.Slice(start, plane), s, sh, y.Slice(start, plane));
            }
        }
    }

    private static void BatchNormBackward<T>(Tensor x, Tensor? output, Tensor g, Tensor gz, Tensor? gx, Tensor? gw, Tensor? gb, Tensor? weight,
        double[] mean, double[] invStd, int n, int c, int plane, bool training, int c0, int c1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xs = x.Span<T>();
        var gs = g.Span<T>();
        var zs = gz.Span<T>();
        int count = n * plane;
        for (int ch = c0; ch < c1; ch++)
        {
            double sumG = 0, sumGX = 0;
            for (int b = 0; b < n; b++)
            {
                int start = (b * c + ch) * plane;
                if (output is not null)
                {
                    // gz = g where the output is positive, with its two sums, in one pass.
                    var (s, sx) = Fused.ReluGradientSums(gs.Slice(start, plane), output.Span<T>().Slice(start, plane), xs.Slice(start, plane), zs.Slice(start, plane));
                    sumG += double.CreateTruncating(s);
                    sumGX += double.CreateTruncating(sx);
                }
                else
                {
                    sumG += double.CreateTruncating(TensorPrimitives.Sum(gs.Slice(start, plane)));
                    sumGX += double.CreateTruncating(TensorPrimitives.Dot(gs.Slice(start, plane), xs.Slice(start, plane)));
                }
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
                Fused.Affine2(zs.Slice(start, plane), ta, xs.Slice(start, plane), tb, tc, dxs.Slice(start, plane));
            }
        }
    }
}
