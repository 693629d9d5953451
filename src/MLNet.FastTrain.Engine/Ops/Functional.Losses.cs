using MLNet.FastTrain.Engine.Autograd;

namespace MLNet.FastTrain.Engine;

/// <summary>How a loss combines its per-sample values.</summary>
public enum Reduction
{
    /// <summary>The (weighted) mean over samples.</summary>
    Mean,

    /// <summary>The sum over samples.</summary>
    Sum,

    /// <summary>One value per sample.</summary>
    None,
}

public static partial class Functional
{
    /// <summary>
    /// Cross-entropy between logits [N, C] and class indices, with optional class weights [C] and label
    /// smoothing ε, as torch defines it:
    /// loss_i = (1 − ε)·w[y_i]·(−log p_i[y_i]) + ε/C·Σ_c w[c]·(−log p_i[c]); the mean divides the sum by Σ_i w[y_i].
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, Tensor? weight = null, double labelSmoothing = 0.0, Reduction reduction = Reduction.Mean)
    {
        CheckRank("cross_entropy", "logits", logits, 2);
        int n = logits.Size(0), c = logits.Size(1);
        if (targets.Length != n)
            throw new ShapeMismatchException($"cross_entropy: {targets.Length} targets for {n} rows of logits {ShapeText.Format(logits.Shape)}.");
        if (weight is not null && (weight.Rank != 1 || weight.Size(0) != c))
            throw ShapeMismatchException.For("cross_entropy", "class weights must be [classes]", weight.Shape, logits.Shape);
        if (labelSmoothing < 0 || labelSmoothing > 1)
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"cross_entropy: label smoothing must be in [0, 1], not {labelSmoothing}.");
        for (int i = 0; i < n; i++)
            if ((uint)targets[i] >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {targets[i]} at row {i} is not a class index in [0, {c}).");

        // The class weights and the targets (held exactly as doubles) are kept for backward in scope-pooled memory.
        var work = ScopedDoubles(c + n);
        var w = work.AsSpan(0, c);
        var target = work.AsSpan(c, n);
        for (int k = 0; k < c; k++) w[k] = weight?.GetFlat(k) ?? 1.0;
        for (int i = 0; i < n; i++) target[i] = targets[i];
        double sumW = 0;
        for (int k = 0; k < c; k++) sumW += w[k];

        // log p in double, kept for backward in scope-pooled memory (a step allocates nothing for it).
        var logpTensor = Tensor.Empty([n, c], DType.Float64);
        var logp = logpTensor.Span<double>();
        Tensor y = reduction == Reduction.None ? Tensor.Empty([n], logits.DType) : Tensor.Scalar(0, logits.DType);
        double divisor = 0, total = 0;
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int k = 0; k < c; k++) max = Math.Max(max, logits.GetFlat(i * c + k));
            double sum = 0;
            for (int k = 0; k < c; k++) sum += Math.Exp(logits.GetFlat(i * c + k) - max);
            double logSum = max + Math.Log(sum);
            double smooth = 0;
            for (int k = 0; k < c; k++)
            {
                double lp = logits.GetFlat(i * c + k) - logSum;
                logp[i * c + k] = lp;
                smooth -= w[k] * lp;
            }
            int t = (int)target[i];
            double loss = (1 - labelSmoothing) * w[t] * -logp[i * c + t] + labelSmoothing / c * smooth;
            if (reduction == Reduction.None) y.SetFlat(i, loss);
            total += loss;
            divisor += w[t];
        }
        if (reduction != Reduction.None) y.SetFlat(0, reduction == Reduction.Mean ? total / divisor : total);

        return GradRecorder.Record(y, "cross_entropy", [logits], (logits, logpTensor, work, (reduction, labelSmoothing, divisor, sumW)),
            static (s, g, grads) =>
            {
                var (logits, logp, work, (reduction, labelSmoothing, divisor, sumW)) = s;
                int n = logits.Size(0), c = logits.Size(1);
                var w = work.AsSpan(0, c);
                var target = work.AsSpan(c, n);
                // With a_k = ∂loss_i/∂log p_k, ∂loss_i/∂x_k = a_k − p_k·Σ_j a_j.
                var gx = Tensor.ZerosLike(logits);
                for (int i = 0; i < n; i++)
                {
                    double upstream = reduction switch
                    {
                        Reduction.None => g.GetFlat(i),
                        Reduction.Mean => g.Item() / divisor,
                        _ => g.Item(),
                    };
                    int t = (int)target[i];
                    double sumA = -(1 - labelSmoothing) * w[t] - labelSmoothing / c * sumW;
                    for (int k = 0; k < c; k++)
                    {
                        double a = -labelSmoothing / c * w[k] - (k == t ? (1 - labelSmoothing) * w[t] : 0);
                        double p = Math.Exp(logp.GetFlat(i * c + k));
                        gx.SetFlat(i * c + k, upstream * (a - p * sumA));
                    }
                }
                grads[0] = gx;
            });
    }

    /// <summary>Mean squared error, mean((input − target)²).</summary>
    public static Tensor MseLoss(Tensor input, Tensor target)
    {
        if (!input.Shape.SequenceEqual(target.Shape)) throw ShapeMismatchException.For("mse_loss", "input and target shapes differ", input.Shape, target.Shape);
        var d = Sub(input, target);
        return Mean(Mul(d, d));
    }

    /// <summary>
    /// Binary cross-entropy on logits, mean over elements: max(x, 0) − x·y + log(1 + e^(−|x|)), which never
    /// overflows.
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor target)
    {
        if (!logits.Shape.SequenceEqual(target.Shape)) throw ShapeMismatchException.For("binary_cross_entropy_with_logits", "logits and target shapes differ", logits.Shape, target.Shape);
        CheckSameDType("binary_cross_entropy_with_logits", logits, target);
        int n = logits.Length;
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double x = logits.GetFlat(i), t = target.GetFlat(i);
            total += Math.Max(x, 0) - x * t + Math.Log(1 + Math.Exp(-Math.Abs(x)));
        }
        var y = Tensor.Scalar(total / Math.Max(n, 1), logits.DType);
        return GradRecorder.Record(y, "binary_cross_entropy_with_logits", [logits, target], g =>
        {
            double scale = g.Item() / Math.Max(n, 1);
            var gx = logits.RequiresGrad ? Tensor.ZerosLike(logits) : null;
            var gt = target.RequiresGrad ? Tensor.ZerosLike(target) : null;
            for (int i = 0; i < n; i++)
            {
                double x = logits.GetFlat(i), t = target.GetFlat(i);
                gx?.SetFlat(i, scale * (1.0 / (1.0 + Math.Exp(-x)) - t)); // σ(x) − y
                gt?.SetFlat(i, -scale * x);
            }
            return [gx, gt];
        });
    }
}
