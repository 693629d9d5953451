using System.Diagnostics;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Models;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.FastTrain.Tests;

public class PrecomputeTests(ITestOutputHelper output)
{
    private static DataLoader Loader() => new(TestData.Train, 32, shuffle: true, seed: 3, dropLast: true);

    [Fact]
    public void Head_trained_on_precomputed_activations_equals_head_trained_through_the_frozen_body()
    {
        // Through the frozen body (batch-norm statistics frozen too, so each item's features never change).
        var throughModel = ModelZoo.ResNetSmall(generator: new Generator(1));
        var through = new DifferentialFineTune(throughModel) { FreezeBatchNormStatistics = true };
        through.Freeze();
        var clock = Stopwatch.StartNew();
        new Learner(throughModel, Loader(), null, new Sgd(throughModel.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4)).Fit(2);
        double throughSeconds = clock.Elapsed.TotalSeconds;

        // On the cache.
        var cachedModel = ModelZoo.ResNetSmall(generator: new Generator(1));
        var cached = new DifferentialFineTune(cachedModel) { FreezeBatchNormStatistics = true };
        cached.Freeze();
        var (body, head) = cached.SplitBodyHead();
        clock.Restart();
        var features = PrecomputedActivations.Compute(body, Loader());
        double precomputeSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        new Learner(head, features, null, new Sgd(head.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4)).Fit(2);
        double headSeconds = clock.Elapsed.TotalSeconds;
        output.WriteLine($"through the body {throughSeconds:F2} s; precompute {precomputeSeconds:F2} s + head {headSeconds:F3} s");

        Assert.Equal([600, 64, 7, 7], features.Items.ShapeArray());                     // layer3 output; the head starts at the pooling
        var expected = throughModel.StateDict();
        var actual = cachedModel.StateDict();
        Assert.NotEqual(ModelZoo.ResNetSmall(generator: new Generator(1)).StateDict()["fc.weight"].ToArray(), actual["fc.weight"].ToArray()); // the head did train
        foreach (var (name, t) in expected) Assert.Equal(t.ToArray(), actual[name].ToArray());
    }

    [Fact]
    public void Precompute_refuses_augmented_data_and_splits_only_sequential_heads()
    {
        var loader = Loader();
        loader.BatchTransform = Vision.Transforms.BatchTransform.Of((x, _) => x);
        var model = ModelZoo.ResNetSmall();
        var (body, _) = new DifferentialFineTune(model).SplitBodyHead();
        var e = Assert.Throws<InvalidOperationException>(() => PrecomputedActivations.Compute(body, loader));
        Assert.Contains("augmentation", e.Message, StringComparison.Ordinal);
        var odd = new DifferentialFineTune(model, LayerGroups.ByChildren(model, ["fc", "pool", "flatten"], ["conv1", "bn1", "relu", "layer1", "layer2", "layer3"]));
        Assert.Throws<InvalidOperationException>(() => odd.SplitBodyHead());
    }

    [Fact]
    public void Tensor_batches_shuffle_like_image_batches()
    {
        var loader = Loader();
        var items = Tensor.Arange(600).Reshape(600, 1);
        var source = new TensorBatchSource(items, TestData.Train.Labels.ToArray(), 32, shuffle: true, seed: 3, dropLast: true);
        Assert.Equal(loader.BatchCount, source.BatchCount);
        var first = source.Epoch(2).First();
        var order = loader.Order(2);
        Assert.Equal(order.Take(32).Select(i => (float)i), first.Images.ToArray());
        Assert.Equal(loader.Epoch(2).First().Labels, first.Labels);
        Assert.Equal(18 - 5, source.Epoch(0, skipBatches: 5).Count());
    }

    /// <summary>Counts forward passes, to see whether the body ran.</summary>
    private sealed class Counting : Engine.Modules.Module
    {
        private readonly Engine.Modules.Module inner;

        public Counting(Engine.Modules.Module inner)
        {
            this.inner = inner;
            RegisterModule("inner", inner);
        }

        public int Calls { get; private set; }

        public override Tensor Forward(Tensor input)
        {
            Calls++;
            return inner.Forward(input);
        }
    }

    [Fact]
    public void The_disk_cache_is_reused_for_the_same_body_and_data_and_missed_when_either_changes()
    {
        var dir = Directory.CreateTempSubdirectory("fasttrain-acts-").FullName;
        try
        {
            var net = ModelZoo.ResNetSmall(generator: new Generator(1));
            var (body, _) = new DifferentialFineTune(net).SplitBodyHead();
            var counting = new Counting(body);
            var first = PrecomputedActivations.Compute(counting, Loader(), dir);
            int afterFirst = counting.Calls;
            Assert.True(afterFirst > 0);
            Assert.Single(Directory.GetFiles(dir, "activations-*.ftm"));

            var second = PrecomputedActivations.Compute(counting, Loader(), dir);
            Assert.Equal(afterFirst, counting.Calls); // read from disk, the body did not run
            Assert.Equal(first.Items.ToArray(), second.Items.ToArray());
            Assert.Equal(first.Items.ShapeArray(), second.Items.ShapeArray());

            // Another weight means another key: computed again, a second file.
            float original = net.Parameters().First().AsSpan()[0];
            net.Parameters().First().AsSpan()[0] += 0.5f;
            PrecomputedActivations.Compute(counting, Loader(), dir);
            Assert.True(counting.Calls > afterFirst);
            Assert.Equal(2, Directory.GetFiles(dir, "activations-*.ftm").Length);

            // Other data (a subset) also misses.
            int calls = counting.Calls;
            PrecomputedActivations.Compute(counting, new DataLoader(TestData.Train.Subset(Enumerable.Range(0, 100).ToList()), 32, shuffle: true, seed: 3), dir);
            Assert.True(counting.Calls > calls);

            // A damaged file is recomputed, not trusted.
            var file = Directory.GetFiles(dir, "activations-*.ftm").OrderBy(File.GetLastWriteTimeUtc).First();
            var bytes = File.ReadAllBytes(file);
            bytes[^10] ^= 0xFF;
            File.WriteAllBytes(file, bytes);
            calls = counting.Calls;
            net.Parameters().First().AsSpan()[0] = original;
            var again = PrecomputedActivations.Compute(counting, Loader(), dir);
            Assert.True(counting.Calls > calls);
            Assert.Equal(first.Items.ToArray(), again.Items.ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
