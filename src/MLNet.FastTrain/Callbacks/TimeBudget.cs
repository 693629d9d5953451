using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Distributed;
using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// Stops training cleanly once a wall-clock budget is spent (checked after every batch), as Model Builder's time
/// budget does. The clock starts when the callback is created, so one budget can span several fits.
/// </summary>
public sealed class TimeBudget(TimeSpan budget) : Callback
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>The budget.</summary>
    public TimeSpan Budget { get; } = budget > TimeSpan.Zero ? budget : throw new ArgumentOutOfRangeException(nameof(budget), $"The time budget must be positive, not {budget}.");

    /// <summary>True once the budget stopped a fit.</summary>
    public bool Exhausted { get; private set; }

    /// <inheritdoc />
    public override void AfterBatch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (!learner.Collective.AnyRank(_clock.Elapsed >= Budget)) return; // data-parallel ranks stop at the same step
        Exhausted = true;
        throw new CancelFitException(string.Create(CultureInfo.InvariantCulture, $"Stopped at the time budget of {Budget.TotalSeconds:F0} s."));
    }
}
