using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Models;
using MLNet.FastTrain.Vision.Transforms;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class ResizeTests
{
    [Fact]
    public void Shrinking_by_two_averages_pixel_pairs()
    {
        byte[] src = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150];   // 4×4
        var dst = new float[4];
        Resize.Planes(src, 1, 4, 4, dst, 2, 2);
        Assert.Equal([25f, 45f, 105f, 125f], dst);                                            // 2×2 block means
    }

    [Fact]
    public void Same_size_is_the_identity_and_enlarging_interpolates()
    {
        byte[] src = [0, 100, 200, 50];
        var same = new float[4];
        Resize.Planes(src, 1, 2, 2, same, 2, 2);
        Assert.Equal(src.Select(b => (float)b), same);
        // 1×2 → 1×4: pixel centres at 0.25 and 0.75 of the way between the two source pixels (edges clamp).
        var wide = new float[4];
        Resize.Planes([0, 100], 1, 1, 2, wide, 1, 4);
        Assert.Equal([0f, 25f, 75f, 100f], wide);
        foreach (var row in Resize.Weights(28, 14).Concat(Resize.Weights(14, 28)).Concat(Resize.Weights(28, 9)))
            Assert.Equal(1.0, row.Sum(w => w.Weight), 5);
    }

    [Fact]
    public void Loader_serves_another_size_without_reloading()
    {
        var loader = new DataLoader(TestData.Train, 8, shuffle: false) { ImageSize = (14, 14) };
        var small = loader.Epoch(0).First();
        Assert.Equal([8, 1, 14, 14], small.Images.ShapeArray());
        loader.ImageSize = null;
        Assert.Equal([8, 1, 28, 28], loader.Epoch(0).First().Images.ShapeArray());
    }

    [Fact]
    public void A_loader_over_other_items_serves_them_as_it_serves_its_own()
    {
        var flip = Augmentations.Flip(1.0);
        var loader = new DataLoader(TestData.Train, 8, shuffle: true, seed: 5, dropLast: true) { ImageSize = (14, 14), BatchTransform = flip };
        var subset = TestData.Train.Subset([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]);
        var over = loader.Over(subset);
        Assert.Same(subset, over.Dataset);
        Assert.Equal((8, true, 5ul, true), (over.BatchSize, over.Shuffle, over.Seed, over.DropLast));
        Assert.Equal(loader.Normalization, over.Normalization);   // the loader's own, not the subset's statistics
        Assert.Same(flip, over.BatchTransform);
        Assert.Equal([8, 1, 14, 14], over.Epoch(0).Single().Images.ShapeArray());

        var rgb = new ImageDataset(new byte[2 * 3 * 4 * 4], [0, 1], 3, 4, 4, ["a", "b"]);
        var error = Assert.Throws<ArgumentException>(() => loader.Over(rgb));
        Assert.Equal("dataset", error.ParamName);
        Assert.Contains("1 channels; the new items have 3", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Progressive_resizing_switches_size_by_epoch()
    {
        var (train, valid) = TestData.Loaders(batch: 64);
        var learner = new Learner(ModelZoo.ResNetSmall(generator: new Generator(1)), train, valid);
        var probe = new SizeProbe();
        var resizing = new ProgressiveResizing([(0, 14), (1, 28)]);
        learner.Fit(2, [resizing, probe]);
        Assert.Equal(Enumerable.Repeat(14, 9).Concat(Enumerable.Repeat(28, 9)), probe.Sizes);
        Assert.Equal(28, valid.ImageSize!.Value.Height);
        Assert.Equal(14, resizing.SizeAt(0));
        Assert.Throws<ArgumentException>(() => new ProgressiveResizing([(1, 14)]));
        Assert.Throws<ArgumentException>(() => new ProgressiveResizing([(0, 14), (0, 28)]));
    }

    [Theory]
    [InlineData(4, true)]
    [InlineData(0, false)]
    public void Batch_norm_statistics_are_refreshed_at_a_size_change(int refreshBatches, bool expectChange)
    {
        var (train, valid) = TestData.Loaders(batch: 64);
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var bn = (Engine.Modules.BatchNorm2d)model.NamedModules().First(kv => kv.Key == "layer3.bn2").Value;
        var watch = new StatsAroundChange(bn);
        new Learner(model, train, valid).Fit(2, [new ProgressiveResizing([(0, 14), (1, 28)], refreshBatches), watch]);
        Assert.Equal(expectChange, !watch.AtEpochEnd!.SequenceEqual(watch.BeforeFirstBatchOfEpoch2!));
    }

    private sealed class SizeProbe : Callback
    {
        public List<int> Sizes { get; } = [];

        public override void BeforeBatch(Learner learner) => Sizes.Add(learner.CurrentBatch!.Images.Size(2));
    }

    /// <summary>Running mean after epoch 1, and again just before epoch 2's first training batch (after any refresh).</summary>
    private sealed class StatsAroundChange(Engine.Modules.BatchNorm2d bn) : Callback
    {
        public float[]? AtEpochEnd { get; private set; }

        public float[]? BeforeFirstBatchOfEpoch2 { get; private set; }

        public override void AfterEpoch(Learner learner) => AtEpochEnd ??= bn.RunningMean.ToArray();

        public override void BeforeBatch(Learner learner)
        {
            if (learner.Epoch == 1 && learner.BatchIndex == 0) BeforeFirstBatchOfEpoch2 = bn.RunningMean.ToArray();
        }
    }
}
