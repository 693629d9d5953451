using MLNet.FastTrain.Distributed;
using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Callbacks;

/// <summary>Clips gradients by their joint norm (or by value) between backward and the optimizer step.</summary>
public sealed class GradientClipping(double maxNorm = 1.0, bool byValue = false) : Callback
{
    /// <inheritdoc />
    public override void AfterBackward(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        learner.Engine.ClipGradients(maxNorm, byValue);
    }
}

/// <summary>
/// Stops training when the loss turns NaN or infinite, or explodes past <see cref="Factor"/> times the best
/// smoothed loss; says which batch and what to try, and puts back the state from the start of the epoch.
/// </summary>
public sealed class DivergenceGuard(double factor = 100) : Callback
{
    private LearnerSnapshot? _lastGood;
    private double _best = double.PositiveInfinity;

    /// <summary>How far above the best smoothed loss counts as diverged.</summary>
    public double Factor { get; } = factor;

    /// <inheritdoc />
    public override int Order => 5; // after the recorder, so the smoothed loss includes the batch

    /// <inheritdoc />
    public override void BeforeFit(Learner learner) => _best = double.PositiveInfinity;

    /// <inheritdoc />
    public override void BeforeEpoch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        _lastGood = learner.Capture();
    }

    /// <inheritdoc />
    public override void AfterLoss(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        double loss = learner.LastLoss;
        // Each data-parallel rank sees its own shard's loss; they agree, so every rank restores and stops together.
        bool diverged = learner.Collective.AnyRank(!double.IsFinite(loss) || (double.IsFinite(_best) && loss > Factor * _best));
        if (!diverged)
        {
            double smooth = learner.Recorder.SmoothLoss;
            if (double.IsFinite(smooth)) _best = Math.Min(_best, smooth);
            return;
        }
        if (_lastGood is not null) learner.Restore(_lastGood);
        double lr = learner.Optimizer.Groups.Max(g => g.LearningRate ?? 0);
        throw new CancelFitException(FormattableString.Invariant(
            $"Training diverged at epoch {learner.Epoch + 1}, batch {learner.BatchIndex + 1}: loss {loss:G4} (best smoothed {_best:G4}) at learning rate {lr:G3}. ") +
            "The state from the start of the epoch was restored. Try a lower learning rate (run the LR finder), gradient clipping, or a smaller batch.");
    }
}
