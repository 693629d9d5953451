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
        var advice = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = budget, BaselineBytes = 0, RuntimeReserveBytes = 0, ValidationBatchSize = 0 });
        Assert.True(advice.BatchSize >= 2);
        Assert.Equal(advice.BatchSize, 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)advice.BatchSize)));
        Assert.True(advice.EstimatedBytes <= budget, advice.Explanation);
        // Doubling the batch would not fit.
        long staticBytes = advice.ParameterBytes + advice.GradientBytes + advice.OptimizerStateBytes;
        long doubledStep = advice.FixedStepBytes + advice.BytesPerSample * 2 * advice.BatchSize;
        Assert.True((staticBytes + Math.Max(doubledStep, advice.ValidationStepBytes)) * 1.25 + 2 * advice.LoaderBytes > budget, advice.Explanation);
        // Activation memory is linear in the batch: the probe at the chosen size matches the estimate of the step.
        long step = advice.FixedStepBytes + advice.BytesPerSample * advice.BatchSize;
        Assert.InRange(advice.MeasuredStepBytes - staticBytes, step * 0.97, step * 1.03);
        // The loader's batches in flight: five batches of 28 × 28 floats.
        Assert.Equal(5L * 4 * 28 * 28 * advice.BatchSize, advice.LoaderBytes);
        Assert.Equal(0, advice.ValidationStepBytes);
        Assert.Contains("per image", advice.Explanation, StringComparison.Ordinal);
        Assert.Equal(model.Parameters().Sum(p => (long)p.Length * 4), advice.ParameterBytes);
        Assert.Equal(2 * advice.GradientBytes, advice.OptimizerStateBytes);
    }

    [Fact]
    public void The_budget_bounds_the_whole_process_what_it_holds_already_counts()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var alone = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 256L << 20, BaselineBytes = 0, RuntimeReserveBytes = 0, ValidationBatchSize = 0 });
        var beside = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 256L << 20, BaselineBytes = 200L << 20, RuntimeReserveBytes = 0, ValidationBatchSize = 0 });
        Assert.True(beside.BatchSize < alone.BatchSize, $"{beside.BatchSize} against {alone.BatchSize}");
        Assert.Equal(200L << 20, beside.BaselineBytes);
        Assert.True(beside.EstimatedBytes <= 256L << 20, beside.Explanation);
        Assert.Contains("the process so far", beside.Explanation, StringComparison.Ordinal);
        // By default 5 % of the budget (at least 48 MB) is kept for what the runtime adds while training.
        var reserved = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 256L << 20, BaselineBytes = 150L << 20, ValidationBatchSize = 0 });
        var unreserved = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 256L << 20, BaselineBytes = 150L << 20, RuntimeReserveBytes = 0, ValidationBatchSize = 0 });
        Assert.True(reserved.BatchSize < unreserved.BatchSize, $"{reserved.BatchSize} against {unreserved.BatchSize}");
        Assert.True(reserved.EstimatedBytes <= 256L << 20, reserved.Explanation);   // the estimate counts the reserve
        Assert.Contains("runtime's growth       48.0 MB", reserved.Explanation, StringComparison.Ordinal);
        // By default the baseline is what the process holds now, so a budget below it cannot work.
        var e = Assert.Throws<InsufficientMemoryBudgetException>(() =>
            BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = Environment.WorkingSet / 2 }));
        Assert.Contains("the process so far", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_validation_pass_at_its_own_batch_size_is_counted_when_it_needs_more_than_a_training_step()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var options = new BatchSizeFinder.Options { MemoryBudgetBytes = 128L << 20, BaselineBytes = 0, RuntimeReserveBytes = 0, MaxBatchSize = 16 };
        var advice = BatchSizeFinder.Find(model, (1, 28, 28), 10, options);
        Assert.True(advice.ValidationStepBytes > advice.FixedStepBytes + advice.BytesPerSample * advice.BatchSize, advice.Explanation);
        long staticBytes = advice.ParameterBytes + advice.GradientBytes + advice.OptimizerStateBytes;
        Assert.Equal((long)((staticBytes + advice.ValidationStepBytes) * 1.25) + advice.LoaderBytes, advice.EstimatedBytes);
        Assert.Contains("validation step", advice.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_larger_budget_gives_a_larger_batch_up_to_the_cap()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var small = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 32L << 20, BaselineBytes = 0, RuntimeReserveBytes = 0, ValidationBatchSize = 0 });
        var large = BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 256L << 20, MaxBatchSize = 64, BaselineBytes = 0, RuntimeReserveBytes = 0, ValidationBatchSize = 0 });
        Assert.True(large.BatchSize >= small.BatchSize);
        Assert.True(large.BatchSize <= 64);
    }

    [Fact]
    public void An_impossible_budget_is_a_clear_error_and_the_model_is_untouched()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var before = model.StateDict().Clone();
        var e = Assert.Throws<InsufficientMemoryBudgetException>(() =>
            BatchSizeFinder.Find(model, (1, 28, 28), 10, new BatchSizeFinder.Options { MemoryBudgetBytes = 1L << 20, BaselineBytes = 0, RuntimeReserveBytes = 0, ValidationBatchSize = 0 }));
        Assert.Contains("cannot train this model even one image", e.Message, StringComparison.Ordinal);
        Assert.Contains("MB", e.Message, StringComparison.Ordinal);
        foreach (var (name, t) in before) Assert.Equal(t.ToArray(), model.StateDict()[name].ToArray());
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));
    }
}
