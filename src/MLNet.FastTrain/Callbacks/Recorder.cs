using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Callbacks;

/// <summary>One recorded training batch.</summary>
public sealed record BatchRecord(int Step, double[] LearningRates, double? Momentum, double Loss, double SmoothLoss);

/// <summary>One recorded epoch.</summary>
/// <param name="Epoch">The epoch's number among all the learner has trained (0-based).</param>
/// <param name="TrainLoss">The mean training loss of its batches.</param>
/// <param name="ValidLoss">The validation loss after it, when there is validation data.</param>
/// <param name="Metrics">The validation metrics after it.</param>
/// <param name="Seconds">The whole epoch, validation included.</param>
/// <param name="TrainSeconds">The training batches alone (data loading, forward, backward and step).</param>
public sealed record EpochRecord(int Epoch, double TrainLoss, double? ValidLoss, IReadOnlyDictionary<string, double> Metrics, double Seconds, double TrainSeconds)
{
    /// <summary>The process's resident memory at the end of the epoch, in bytes (whether it stays flat from epoch to epoch tells a leak).</summary>
    public long ResidentBytes { get; init; }

    /// <summary>
    /// The managed heap's size after the last garbage collection before the end of the epoch, and the part of it that
    /// was free space between objects, in bytes: set beside <see cref="ResidentBytes"/>, they tell whether growth is
    /// in the managed heap (and whether it is live objects or fragmentation) or outside it.
    /// </summary>
    public long ManagedHeapBytes { get; init; }

    /// <inheritdoc cref="ManagedHeapBytes"/>
    public long ManagedFragmentedBytes { get; init; }
}

/// <summary>
/// Records every batch's learning rates, momentum, loss and smoothed loss (an exponential moving average with
/// β = 0.98 and bias correction), and every epoch's losses and metrics; logs an epoch summary.
/// </summary>
public sealed class Recorder : Callback
{
    private const double Beta = 0.98;
    private readonly List<BatchRecord> _batches = [];
    private readonly List<EpochRecord> _epochs = [];
    private readonly Stopwatch _clock = new();
    private double _average;
    private int _count;
    private double _epochLoss;
    private int _epochBatches;
    private double? _trainSeconds;

    /// <inheritdoc />
    public override int Order => 0;

    /// <summary>Every batch of every fit since the learner was made.</summary>
    public IReadOnlyList<BatchRecord> Batches => _batches;

    /// <summary>Every epoch.</summary>
    public IReadOnlyList<EpochRecord> Epochs => _epochs;

    /// <summary>The current smoothed training loss.</summary>
    public double SmoothLoss => _count == 0 ? double.NaN : _average / (1 - Math.Pow(Beta, _count));

    /// <inheritdoc />
    public override void BeforeFit(Learner learner)
    {
        _average = 0;
        _count = 0;
    }

    /// <inheritdoc />
    public override void BeforeEpoch(Learner learner)
    {
        _epochLoss = 0;
        _epochBatches = 0;
        _trainSeconds = null;
        _clock.Restart();
    }

    /// <inheritdoc />
    public override void BeforeValidate(Learner learner) => _trainSeconds ??= _clock.Elapsed.TotalSeconds;

    /// <inheritdoc />
    public override void AfterBatch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        double loss = learner.LastLoss;
        _count++;
        _average = Beta * _average + (1 - Beta) * loss;
        _epochLoss += loss;
        _epochBatches++;
        var groups = learner.Optimizer.Groups;
        var rates = new double[groups.Count];
        for (int g = 0; g < rates.Length; g++) rates[g] = groups[g].LearningRate ?? 0;
        _batches.Add(new BatchRecord(learner.Step, rates, groups[0].Momentum, loss, SmoothLoss));
    }

    /// <inheritdoc />
    public override void AfterEpoch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        var v = learner.LastValidation;
        var heap = GC.GetGCMemoryInfo();
        var record = new EpochRecord(learner.EpochsTrained - 1, _epochBatches == 0 ? double.NaN : _epochLoss / _epochBatches, v?.Loss,
            v?.Metrics ?? new Dictionary<string, double>(), _clock.Elapsed.TotalSeconds, _trainSeconds ?? _clock.Elapsed.TotalSeconds)
        {
            ResidentBytes = Environment.WorkingSet,
            ManagedHeapBytes = heap.HeapSizeBytes,
            ManagedFragmentedBytes = heap.FragmentedBytes,
        };
        _epochs.Add(record);
        var metrics = string.Join(", ", record.Metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F4}")));
        learner.Write(FormattableString.Invariant($"epoch {learner.Epoch + 1}/{learner.Epochs}: train_loss {record.TrainLoss:F4}") +
            (v is null ? "" : FormattableString.Invariant($", valid_loss {v.Loss:F4}")) + (metrics.Length > 0 ? ", " + metrics : "") +
            FormattableString.Invariant($" ({record.Seconds:F1} s)"));
    }
}
