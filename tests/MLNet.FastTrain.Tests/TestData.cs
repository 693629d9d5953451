using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Tests;

/// <summary>The bundled Fashion-MNIST subset and a small, fast network for training tests.</summary>
internal static class TestData
{
    private static readonly Lazy<(ImageDataset Train, ImageDataset Valid)> Mini = new(() => IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini")));

    public static ImageDataset Train => Mini.Value.Train;

    public static ImageDataset Valid => Mini.Value.Valid;

    public static (DataLoader Train, DataLoader Valid) Loaders(int batch = 32)
    {
        var train = new DataLoader(Train, batch, shuffle: true, seed: 3, dropLast: true);
        return (train, new DataLoader(Valid, 100, shuffle: false, normalization: train.Normalization));
    }

    /// <summary>conv 1→16, ReLU, max-pool, conv 16→32, BN, ReLU, max-pool, flatten, linear 1568→10: small, and quick to learn.</summary>
    public static Sequential TinyNet(ulong seed = 1)
    {
        var g = new Generator(seed);
        return new Sequential(
            new Conv2d(1, 16, 3, padding: 1, generator: g), new ReLU(), new MaxPool2d(2),
            new Conv2d(16, 32, 3, padding: 1, generator: g), new BatchNorm2d(32), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(32 * 7 * 7, 10, generator: g));
    }
}
