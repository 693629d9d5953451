using System.Buffers;
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
        CheckChannelVector(op, "weight", weight, x);
        CheckChannelVector(op, "bias", bias, x);
        CheckChannelVector(op, "running_mean", runningMean, x);
        CheckChannelVector(op, "running_var", runningVar, x);
        if (residual is not null && !residual.Shape.SequenceEqual(x.Shape))
            throw ShapeMismatchException.For(op, "the residual must have the input's shape", residual.Shape, x.Shape);
        if (residual is not null && residual.DType != x.DType)
            throw new ArgumentException($"{op}: the residual is {residual.DType}, the input {x.DType}.", nameof(residual));
        if (!training && (runningMean is null || runningVar is null))
            throw new InvalidOperationException($"{op}: evaluation mode needs running statistics.");
        if (training && count < 2)
            throw new ArgumentException($"{op}: training needs more than one value per channel; input shape is {ShapeText.Format(x.Shape)}.", nameof(x));

        // Work is shared out by image, so each thread streams through whole, contiguous images; per-plane partial
        // results are combined per channel in a fixed order, so the values do not depend on the thread count. The
        // statistics the backward pass needs live in the step's pooled memory.
        var mean = ScopedDoubles(c);
        var invStd = ScopedDoubles(c);
        int grain = BatchNormGrain(c, plane);
        if (training)
        {
            var planeSum = ArrayPool<double>.Shared.Rent(n * c);
            var planeM2 = ArrayPool<double>.Shared.Rent(n * c);
            ParallelRanges.For(n, grain, (x, plane, c, planeSum, planeM2), static (s, b0, b1) =>
            {
                if (IsF32(s.x)) PlaneMoments<float>(s.x.Span<float>(), s.plane, b0 * s.c, b1 * s.c, s.planeSum, s.planeM2);
                else PlaneMoments<double>(s.x.Span<double>(), s.plane, b0 * s.c, b1 * s.c, s.planeSum, s.planeM2);
            });
            for (int ch = 0; ch < c; ch++)
            {
                // Chan et al.'s combination of the planes' moments: M2 = Σ M2ₚ + P·Σ (μₚ − μ)².
                double sum = 0, m2 = 0;
                for (int b = 0; b < n; b++) sum += planeSum[b * c + ch];
                double mu = sum / count;
                for (int b = 0; b < n; b++)
                {
                    double d = planeSum[b * c + ch] / plane - mu;
                    m2 += planeM2[b * c + ch] + plane * d * d;
                }
                double variance = m2 / count;
                mean[ch] = mu;
                invStd[ch] = 1.0 / Math.Sqrt(variance + eps);
                if (runningMean is not null) runningMean.SetFlat(ch, (1 - momentum) * runningMean.GetFlat(ch) + momentum * mu);
                if (runningVar is not null) runningVar.SetFlat(ch, (1 - momentum) * runningVar.GetFlat(ch) + momentum * variance * count / (count - 1));
            }
            ArrayPool<double>.Shared.Return(planeSum);
            ArrayPool<double>.Shared.Return(planeM2);
        }
        else
        {
            for (int ch = 0; ch < c; ch++)
            {
                mean[ch] = runningMean!.GetFlat(ch);
                invStd[ch] = 1.0 / Math.Sqrt(runningVar!.GetFlat(ch) + eps);
            }
        }

        // y = x·scale + shift with scale = γ·invstd and shift = β − μ·scale; then + residual and ReLU if asked.
        var scale = ArrayPool<double>.Shared.Rent(c);
        var shift = ArrayPool<double>.Shared.Rent(c);
        for (int ch = 0; ch < c; ch++)
        {
            scale[ch] = (weight?.GetFlat(ch) ?? 1.0) * invStd[ch];
            shift[ch] = (bias?.GetFlat(ch) ?? 0.0) - mean[ch] * scale[ch];
        }
        var y = Tensor.EmptyLike(x);
        ParallelRanges.For(n, grain, (x, residual, relu, y, scale, shift, (c, plane)), static (s, b0, b1) =>
        {
            var (c, plane) = s.Item7;
            if (IsF32(s.x)) BatchNormApply<float>(s.x.Span<float>(), s.residual is null ? default : s.residual.Span<float>(), s.relu, s.y.Span<float>(), s.scale, s.shift, c, plane, b0, b1);
            else BatchNormApply<double>(s.x.Span<double>(), s.residual is null ? default : s.residual.Span<double>(), s.relu, s.y.Span<double>(), s.scale, s.shift, c, plane, b0, b1);
        });
        ArrayPool<double>.Shared.Return(scale);
        ArrayPool<double>.Shared.Return(shift);

        return GradRecorder.Record(y, op, [x, weight, bias, residual], ((x, weight, bias, residual), (y, relu, training), (mean, invStd)),
            static (s, g, grads) =>
            {
                var ((x, weight, bias, residual), (y, relu, training), (mean, invStd)) = s;
                (grads[0], grads[1], grads[2], grads[3]) = BatchNormBackward(x, weight, bias, residual, y, relu, training, mean, invStd, g);
            });
    }

    /// <summary>The gradients of x, weight, bias and residual (null where not needed) from the output's gradient g.</summary>
    private static (Tensor? X, Tensor? Weight, Tensor? Bias, Tensor? Residual) BatchNormBackward(Tensor x, Tensor? weight, Tensor? bias,
        Tensor? residual, Tensor y, bool relu, bool training, double[] mean, double[] invStd, Tensor g)
    {
        int n = x.Size(0), c = x.Size(1), plane = x.Size(2) * x.Size(3);
        int count = n * plane;
        int grain = BatchNormGrain(c, plane);
        var gx = x.RequiresGrad ? Tensor.EmptyLike(x) : null;
        var gw = weight is not null && weight.RequiresGrad ? Tensor.ZerosLike(weight) : null;
        var gb = bias is not null && bias.RequiresGrad ? Tensor.ZerosLike(bias) : null;
        // With a ReLU, the gradient that reaches the sum is g where the output is positive; it is the residual's
        // gradient as it stands, and what the normalisation's backward starts from.
        var gz = !relu ? g : residual is not null && residual.RequiresGrad ? Tensor.EmptyLike(x) : gx ?? Tensor.EmptyLike(x);
        var planeG = ArrayPool<double>.Shared.Rent(n * c);
        var planeGX = ArrayPool<double>.Shared.Rent(n * c);
        ParallelRanges.For(n, grain, (x, relu ? y : null, g, gz, (plane, c), planeG, planeGX), static (s, b0, b1) =>
        {
            var (plane, c) = s.Item5;
            if (IsF32(s.x)) GradientSums<float>(s.x, s.Item2, s.g, s.gz, plane, b0 * c, b1 * c, s.planeG, s.planeGX);
            else GradientSums<double>(s.x, s.Item2, s.g, s.gz, plane, b0 * c, b1 * c, s.planeG, s.planeGX);
        });
        // Per channel, dx = a·gz + b·x + c. Training: a = γ·invstd, b = −a·invstd·Σ(gz·x̂)/M,
        // c = −a·Σgz/M − b·μ (from dx = γ·invstd·(gz − Σgz/M − x̂·Σ(gz·x̂)/M)). Evaluation: dx = γ·invstd·gz.
        var coefficients = ArrayPool<double>.Shared.Rent(3 * c);
        for (int ch = 0; ch < c; ch++)
        {
            double sumG = 0, sumGX = 0;
            for (int b = 0; b < n; b++)
            {
                sumG += planeG[b * c + ch];
                sumGX += planeGX[b * c + ch];
            }
            // Σ gz·x̂ = invstd·(Σ gz·x − μ·Σ gz)
            double sumGXhat = invStd[ch] * (sumGX - mean[ch] * sumG);
            gw?.SetFlat(ch, sumGXhat);
            gb?.SetFlat(ch, sumG);
            double a = (weight?.GetFlat(ch) ?? 1.0) * invStd[ch], bx = 0, cx = 0;
            if (training)
            {
                bx = -a * invStd[ch] * sumGXhat / count;
                cx = -a * sumG / count - bx * mean[ch];
            }
            (coefficients[3 * ch], coefficients[3 * ch + 1], coefficients[3 * ch + 2]) = (a, bx, cx);
        }
        ArrayPool<double>.Shared.Return(planeG);
        ArrayPool<double>.Shared.Return(planeGX);
        if (gx is not null)
        {
            ParallelRanges.For(n, grain, (x, gz, gx, coefficients, c, plane), static (s, b0, b1) =>
            {
                if (IsF32(s.x)) InputGradient<float>(s.x, s.gz, s.gx, s.coefficients, s.c, s.plane, b0, b1);
                else InputGradient<double>(s.x, s.gz, s.gx, s.coefficients, s.c, s.plane, b0, b1);
            });
        }
        ArrayPool<double>.Shared.Return(coefficients);
        return (gx, gw, gb, residual is not null && residual.RequiresGrad ? gz : null);
    }

    private static void CheckChannelVector(string op, string name, Tensor? t, Tensor x)
    {
        if (t is not null && (t.Rank != 1 || t.Size(0) != x.Size(1)))
            throw ShapeMismatchException.For(op, $"{name} must be [channels]", t.Shape, x.Shape);
    }

    /// <summary>Images per thread below which a batch-norm pass over [N, C, H, W] stays on one thread.</summary>
    private static int BatchNormGrain(int c, int plane) => Math.Max(1, ParallelRanges.ElementwiseGrain / Math.Max(1, c * plane));

    /// <summary>Sum and squared deviation about its own mean of each plane in [p0, p1) (the second pass reads the plane from cache).</summary>
    private static void PlaneMoments<T>(ReadOnlySpan<T> x, int plane, int p0, int p1, double[] planeSum, double[] planeM2)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int p = p0; p < p1; p++)
        {
            var values = x.Slice(p * plane, plane);
            double s = double.CreateTruncating(TensorPrimitives.Sum(values));
            planeSum[p] = s;
            planeM2[p] = double.CreateTruncating(Fused.SumSquaredDeviation(values, T.CreateTruncating(s / plane)));
        }
    }

    private static void BatchNormApply<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> residual, bool relu, Span<T> y, double[] scale, double[] shift,
        int c, int plane, int b0, int b1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int b = b0; b < b1; b++)
        {
            for (int ch = 0; ch < c; ch++)
            {
                int start = (b * c + ch) * plane;
                T s = T.CreateTruncating(scale[ch]), sh = T.CreateTruncating(shift[ch]);
                if (relu) Fused.ScaleShiftRelu(x.Slice(start, plane), s, sh, residual.IsEmpty ? default : residual.Slice(start, plane), y.Slice(start, plane));
                else Fused.ScaleShift(x.Slice(start, plane), s, sh, y.Slice(start, plane));
            }
        }
    }

    /// <summary>
    /// Σ gz and Σ gz·x of each plane in [p0, p1); with a ReLU (<paramref name="output"/> given) gz = g where the output
    /// is positive, written to <paramref name="gz"/> in the same pass.
    /// </summary>
    private static void GradientSums<T>(Tensor x, Tensor? output, Tensor g, Tensor gz, int plane, int p0, int p1, double[] planeG, double[] planeGX)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xs = x.Span<T>();
        var gs = g.Span<T>();
        var zs = gz.Span<T>();
        for (int p = p0; p < p1; p++)
        {
            int start = p * plane;
            if (output is not null)
            {
                var (s, sx) = Fused.ReluGradientSums(gs.Slice(start, plane), output.Span<T>().Slice(start, plane), xs.Slice(start, plane), zs.Slice(start, plane));
                planeG[p] = double.CreateTruncating(s);
                planeGX[p] = double.CreateTruncating(sx);
            }
            else
            {
                planeG[p] = double.CreateTruncating(TensorPrimitives.Sum(gs.Slice(start, plane)));
                planeGX[p] = double.CreateTruncating(TensorPrimitives.Dot(gs.Slice(start, plane), xs.Slice(start, plane)));
            }
        }
    }

    private static void InputGradient<T>(Tensor x, Tensor gz, Tensor gx, double[] coefficients, int c, int plane, int b0, int b1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xs = x.Span<T>();
        var zs = gz.Span<T>();
        var dxs = gx.Span<T>();
        for (int b = b0; b < b1; b++)
        {
            for (int ch = 0; ch < c; ch++)
            {
                int start = (b * c + ch) * plane;
                Fused.Affine2(zs.Slice(start, plane), T.CreateTruncating(coefficients[3 * ch]), xs.Slice(start, plane),
                    T.CreateTruncating(coefficients[3 * ch + 1]), T.CreateTruncating(coefficients[3 * ch + 2]), dxs.Slice(start, plane));
            }
        }
    }
}
