using MLNet.FastTrain.Engine.Schedules;
using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// Sets every parameter group's learning rate (and optionally momentum, or Adam's β₁) from schedules before each
/// batch, evaluated at the learner's step. One learning-rate schedule per group allows discriminative rates.
/// </summary>
public sealed class ParamScheduler : Callback
{
    private readonly IReadOnlyList<Schedule> _lr;
    private readonly Schedule? _momentum;

    /// <summary>Creates the scheduler: one schedule for all groups, or one per group.</summary>
    public ParamScheduler(IReadOnlyList<Schedule> learningRates, Schedule? momentum = null)
    {
        ArgumentNullException.ThrowIfNull(learningRates);
        if (learningRates.Count == 0) throw new ArgumentException("At least one learning-rate schedule is needed.", nameof(learningRates));
        _lr = learningRates;
        _momentum = momentum;
    }

    /// <inheritdoc />
    public override int Order => -10;

    /// <inheritdoc />
    public override void BeforeFit(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (_lr.Count != 1 && _lr.Count != learner.Optimizer.Groups.Count)
            throw new ArgumentException($"{_lr.Count} learning-rate schedules for {learner.Optimizer.Groups.Count} parameter groups.");
    }

    /// <inheritdoc />
    public override void BeforeBatch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        var groups = learner.Optimizer.Groups;
        for (int g = 0; g < groups.Count; g++)
        {
            groups[g].LearningRate = _lr[_lr.Count == 1 ? 0 : g].At(learner.Step);
            if (_momentum is not null) groups[g].Momentum = _momentum.At(learner.Step);
        }
    }
}

/// <summary>Keeps a copy of the weights at the given steps (the ends of SGDR cycles): a snapshot ensemble.</summary>
public sealed class SnapshotCallback(IReadOnlyList<int> stepsEnding) : Callback
{
    private readonly List<Engine.Serialization.StateDict> _snapshots = [];

    /// <summary>The weights taken so far, oldest first.</summary>
    public IReadOnlyList<Engine.Serialization.StateDict> Snapshots => _snapshots;

    /// <inheritdoc />
    public override void BeforeFit(Learner learner) => _snapshots.Clear();

    /// <inheritdoc />
    public override void AfterBatch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (stepsEnding.Contains(learner.Step + 1)) _snapshots.Add(learner.Engine.ModelState());
    }
}
