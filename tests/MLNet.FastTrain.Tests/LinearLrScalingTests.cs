using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine.Optimizers;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>The linear scaling rule with warm-up for data-parallel training (docs/design.md §11).</summary>
public sealed class LinearLrScalingTests
{
    [Fact]
    public void A_constant_rate_is_warmed_up_to_factor_times_itself_and_left_as_it_was()
    {
        var learner = TestData.SeededLearner();
        learner.Optimizer = new Sgd(learner.Model.Parameters(), 0.01, momentum: 0.9);
        learner.Fit(1, [new LinearLrScaling(4, warmupSteps: 4)]);
        var rates = learner.Recorder.Batches.Select(b => b.LearningRates[0]).ToArray();
        double[] expected = [0.0175, 0.025, 0.0325, 0.04, 0.04];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], rates[i], 12);
        Assert.Equal(0.01, learner.Optimizer.Groups[0].LearningRate);
    }

    [Fact]
    public void A_schedule_s_rates_are_multiplied_not_compounded()
    {
        var plain = TestData.SeededLearner();
        plain.FitOneCycle(1, [1e-3]);
        var scaled = TestData.SeededLearner();
        scaled.Add(new LinearLrScaling(2));
        scaled.FitOneCycle(1, [1e-3]);
        var a = plain.Recorder.Batches.Select(b => b.LearningRates[0]).ToArray();
        var b = scaled.Recorder.Batches.Select(r => r.LearningRates[0]).ToArray();
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++) Assert.Equal(2 * a[i], b[i], 12);
    }

    [Fact]
    public void A_factor_below_one_or_negative_warm_up_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LinearLrScaling(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LinearLrScaling(2, -1));
    }
}
