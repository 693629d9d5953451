using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Models;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class BatchSizeFinderTests
{
    [Fact]
    public void Picks_the_largest_power_of_two_that_fits_and_the_probe_confirms_it()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        long budget = 64L << 20;
        var advice = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = budget });
        Assert.True(advice.BatchSize >= 2);
        Assert.Equal(advice.BatchSize, 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)advice.BatchSize)));
        Assert.True(advice.EstimatedBytes * 1.25 <= budget, advice.Explanation);
        // Doubling the batch would not fit.
        Assert.True((advice.EstimatedBytes + advice.BytesPerSample * advice.BatchSize) * 1.25 > budget, advice.Explanation);
        // Activation memory is linear in the batch: the probe at the chosen size matches the estimate.
        Assert.InRange(advice.MeasuredStepBytes, advice.EstimatedBytes * 0.97, advice.EstimatedBytes * 1.03);
        Assert.Contains("per image", advice.Explanation, StringComparison.Ordinal);
        Assert.Equal(model.Parameters().Sum(p => (long)p.Length * 4), advice.ParameterBytes);
        Assert.Equal(2 * advice.GradientBytes, advice.OptimizerStateBytes);
    }

    [Fact]
    public void A_larger_budget_gives_a_larger_batch_up_to_the_cap()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var small = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 32L << 20 });
        var large = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 256L << 20, MaxBatchSize = 64 });
        Assert.True(large.BatchSize >= small.BatchSize);
        Assert.True(large.BatchSize <= 64);
    }

    [Fact]
    public void An_impossible_budget_is_a_clear_error_and_the_model_is_untouched()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var before = model.StateDict().Clone();
        var e = Assert.Throws<InsufficientMemoryBudgetException>(() =>
            BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 1L << 20 }));
        Assert.Contains("cannot train this model even one image", e.Message, StringComparison.Ordinal);
        Assert.Contains("MB", e.Message, StringComparison.Ordinal);
        foreach (var (name, t) in before) Assert.Equal(t.ToArray(), model.StateDict()[name].ToArray());
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));
    }
}
