using MLNet.FastTrain.Engine;
using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Datasets;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class DataTests
{
    [Fact]
    public void Idx_folder_loads_with_fashion_class_names()
    {
        Assert.Equal(600, TestData.Train.Count);
        Assert.Equal(200, TestData.Valid.Count);
        Assert.Equal((1, 28, 28), (TestData.Train.Channels, TestData.Train.Height, TestData.Train.Width));
        Assert.Equal("Ankle boot", TestData.Train.Classes[9]);
        Assert.Equal(60, TestData.Train.Labels.ToArray().Count(l => l == 3)); // class-balanced subset
    }

    [Fact]
    public void Loader_normalises_batches_and_shuffles_by_seed()
    {
        var loader = new DataLoader(TestData.Train, 64, shuffle: true, seed: 5);
        var batches = loader.Epoch(0).ToList();
        Assert.Equal(10, batches.Count);
        Assert.Equal(64, batches[0].Labels.Length);
        Assert.Equal(600 - 9 * 64, batches[^1].Labels.Length);
        var all = batches.SelectMany(b => b.Images.ToArray()).ToArray();
        Assert.InRange(all.Average(), -0.01, 0.01);                              // normalised with the set's own mean
        Assert.Equal(loader.Order(0), new DataLoader(TestData.Train, 64, shuffle: true, seed: 5).Order(0));
        Assert.NotEqual(loader.Order(0), loader.Order(1));
        Assert.Equal(Enumerable.Range(0, 600), new DataLoader(TestData.Train, 64, shuffle: false).Order(3));
        Assert.Equal(9, new DataLoader(TestData.Train, 64, shuffle: true, dropLast: true).Epoch(0).Count());
    }

    [Fact]
    public void Loader_stops_cleanly_when_the_consumer_stops_early()
    {
        var loader = new DataLoader(TestData.Train, 16, shuffle: true);
        var first = loader.Epoch(0).Take(2).ToList();                             // must not hang
        Assert.Equal(2, first.Count);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => loader.Epoch(0, cancellationToken: cts.Token).ToList());
    }

    [Fact]
    public void Split_is_seeded_and_disjoint()
    {
        var (a, b) = TestData.Train.Split(0.2, seed: 1);
        Assert.Equal(480, a.Count);
        Assert.Equal(120, b.Count);
        var (a2, _) = TestData.Train.Split(0.2, seed: 1);
        Assert.Equal(a.Labels.ToArray(), a2.Labels.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => TestData.Train.Split(1.5, 1));
    }

    [Fact]
    public void Bad_idx_files_are_reported_with_their_path()
    {
        var dir = Directory.CreateTempSubdirectory("idx-").FullName;
        try
        {
            var missing = Assert.Throws<InvalidDatasetException>(() => IdxDataset.Load(dir));
            Assert.Contains("train-images-idx3-ubyte", missing.Message, StringComparison.Ordinal);
            File.WriteAllBytes(Path.Combine(dir, "train-images-idx3-ubyte"), [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3]);
            File.WriteAllBytes(Path.Combine(dir, "train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 1, 2]);
            var truncated = Assert.Throws<InvalidDatasetException>(() => IdxDataset.Load(dir));
            Assert.Contains("train-images-idx3-ubyte", truncated.Message, StringComparison.Ordinal);
            Assert.Contains("1568", truncated.Message, StringComparison.Ordinal);
            File.WriteAllBytes(Path.Combine(dir, "train-images-idx3-ubyte"), [0x89, 0x50, 0x4E, 0x47]);
            Assert.Contains("not an IDX file", Assert.Throws<InvalidDatasetException>(() => IdxDataset.Load(dir)).Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

/// <summary>Tests that count the whole process's allocations, and so run when no other test does.</summary>
[CollectionDefinition(nameof(ProcessAllocationTests), DisableParallelization = true)]
public sealed class ProcessAllocationTests;

/// <summary>A training epoch reuses its batches' memory instead of asking the garbage collector for it per batch.</summary>
[Collection(nameof(ProcessAllocationTests))]
public class BatchMemoryTests
{
    [Fact]
    public void An_augmented_epoch_allocates_far_less_than_its_batches_hold()
    {
        var (train, valid) = TestData.Loaders(batch: 16);
        // Three augmentations that each make a new batch-sized image tensor.
        train.BatchTransform = Vision.Transforms.Augmentations.Compose(
            Vision.Transforms.Augmentations.Flip(), Vision.Transforms.Augmentations.PadCrop(), Vision.Transforms.Augmentations.Lighting());
        var net = TestData.TinyNet();
        var learner = new Learning.Learner(net, train, valid, new Engine.Optimizers.Sgd(net.Parameters(), 0.01, momentum: 0.9));
        learner.Fit(1);                                                           // warms the pool
        long before = GC.GetTotalAllocatedBytes(precise: true);
        learner.Fit(1);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        // Each batch's images alone are 16 × 784 floats, and the augmentations make three more of them; the training
        // step and validation themselves allocate no arrays (their memory comes from the pool, kept across epochs).
        long imageBytes = (long)train.BatchCount * 16 * 28 * 28 * sizeof(float);
        Assert.True(allocated < imageBytes / 4, $"an epoch of {train.BatchCount} batches allocated {allocated:N0} bytes; its images are {imageBytes:N0}");
    }
}
