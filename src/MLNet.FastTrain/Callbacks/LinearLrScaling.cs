using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// The linear scaling rule of Goyal et al. (2017) for data-parallel training over <paramref name="factor"/> ranks:
/// a global batch <paramref name="factor"/> times larger trains at <paramref name="factor"/> times the rate, reached
/// by a linear warm-up over the first <paramref name="warmupSteps"/> steps (step t of the warm-up trains at
/// 1 + (factor − 1)·(t + 1)/warmupSteps times the rate). It multiplies whatever rate the schedule set for the batch
/// and puts it back after the batch, so any schedule and the LR finder's answer keep their meaning.
/// </summary>
public sealed class LinearLrScaling(int factor, int warmupSteps = 0) : Callback
{
    private readonly int _factor = factor >= 1 ? factor : throw new ArgumentOutOfRangeException(nameof(factor), factor, "The factor is the rank count, at least 1.");
    private readonly int _warmup = warmupSteps >= 0 ? warmupSteps : throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warm-up steps cannot be negative.");
    private double?[] _saved = [];

    /// <summary>After the schedulers (which set the batch's rate), before the step.</summary>
    public override int Order => 5;

    /// <summary>The multiplier at training step <paramref name="step"/>.</summary>
    public double Multiplier(int step) => step >= _warmup ? _factor : 1 + (_factor - 1) * (step + 1.0) / _warmup;

    /// <inheritdoc />
    public override void BeforeBatch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        var groups = learner.Optimizer.Groups;
        _saved = [.. groups.Select(g => g.LearningRate)];
        double m = Multiplier(learner.Step);
        foreach (var g in groups) g.LearningRate *= m;
    }

    /// <inheritdoc />
    public override void AfterBatch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        var groups = learner.Optimizer.Groups;
        for (int i = 0; i < groups.Count && i < _saved.Length; i++) groups[i].LearningRate = _saved[i];
    }
}
