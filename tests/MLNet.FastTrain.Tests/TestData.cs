using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
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

    /// <summary>A learner whose every run is the same (seeded, the tiny net, SGD with momentum and weight decay): what resuming is compared with.</summary>
    public static Learner SeededLearner()
    {
        Generator.Default.ManualSeed(7);
        var (train, valid) = Loaders();
        var net = TinyNet(seed: 3);
        return new Learner(net, train, valid, new Sgd(net.Parameters(), 0.01, momentum: 0.9, weightDecay: 5e-4));
    }

    /// <summary>Every weight and buffer of the learner's model, in state-dict order.</summary>
    public static float[] Weights(Learner learner) => learner.Model.StateDict().Values.SelectMany(t => t.ToArray()).ToArray();
}
