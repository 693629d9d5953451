using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Metrics;

/// <summary>A quality measure accumulated over a validation pass.</summary>
public abstract class Metric
{
    /// <summary>The name used in logs and records ("accuracy").</summary>
    public abstract string Name { get; }

    /// <summary>True when larger values are better.</summary>
    public virtual bool HigherIsBetter => true;

    /// <summary>Starts a new pass.</summary>
    public abstract void Reset();

    /// <summary>Adds one batch: logits [B, classes] and labels.</summary>
    public abstract void Accumulate(Tensor logits, ReadOnlySpan<int> labels);

    /// <summary>The value over everything accumulated since <see cref="Reset"/>.</summary>
    public abstract double Value { get; }
}

/// <summary>The fraction of items whose true class is among the <c>k</c> highest scores (k = 1: accuracy).</summary>
public class TopKAccuracy : Metric
{
    private long _correct, _total;

    /// <summary>Creates the metric.</summary>
    public TopKAccuracy(int k = 5)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        K = k;
    }

    /// <summary>k.</summary>
    public int K { get; }

    /// <inheritdoc />
    public override string Name => K == 1 ? "accuracy" : $"top{K}_accuracy";

    /// <inheritdoc />
    public override void Reset() => _correct = _total = 0;

    /// <inheritdoc />
    public override void Accumulate(Tensor logits, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        int n = logits.Size(0), c = logits.Size(1);
        var s = logits.ToArray();
        for (int i = 0; i < n; i++)
        {
            float truth = s[i * c + labels[i]];
            if (float.IsNaN(truth)) continue;                    // a NaN score is never a right answer
            int higher = 0;
            for (int j = 0; j < c; j++)
            {
                float v = s[i * c + j];
                if (v > truth || float.IsNaN(v) || (v == truth && j < labels[i])) higher++;
            }
            if (higher < K) _correct++;
        }
        _total += n;
    }

    /// <inheritdoc />
    public override double Value => _total == 0 ? double.NaN : (double)_correct / _total;
}

/// <summary>The fraction of items whose highest score is the true class.</summary>
public sealed class Accuracy : TopKAccuracy
{
    /// <summary>Creates the metric.</summary>
    public Accuracy() : base(1) { }
}

/// <summary>1 − accuracy.</summary>
public sealed class ErrorRate : Metric
{
    private readonly Accuracy _accuracy = new();

    /// <inheritdoc />
    public override string Name => "error_rate";

    /// <inheritdoc />
    public override bool HigherIsBetter => false;

    /// <inheritdoc />
    public override void Reset() => _accuracy.Reset();

    /// <inheritdoc />
    public override void Accumulate(Tensor logits, ReadOnlySpan<int> labels) => _accuracy.Accumulate(logits, labels);

    /// <inheritdoc />
    public override double Value => 1 - _accuracy.Value;
}
