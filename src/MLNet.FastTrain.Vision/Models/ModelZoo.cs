using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Vision.Models;

/// <summary>Ready-made networks.</summary>
public static class ModelZoo
{
    /// <summary>
    /// The reference "simple" net for 28×28 inputs: conv 3×3 c→32, ReLU, conv 3×3 32→64, ReLU, max-pool 2,
    /// flatten, linear 9216→128, ReLU, linear 128→classes.
    /// </summary>
    public static Sequential Simple(int inChannels = 1, int numClasses = 10, Generator? generator = null) => new(
        ("conv1", new Conv2d(inChannels, 32, 3, generator: generator)), ("relu1", new ReLU()),
        ("conv2", new Conv2d(32, 64, 3, generator: generator)), ("relu2", new ReLU()), ("pool", new MaxPool2d(2)),
        ("flatten", new Flatten()), ("fc1", new Linear(9216, 128, generator: generator)), ("relu3", new ReLU()),
        ("fc2", new Linear(128, numClasses, generator: generator)));

    /// <summary>
    /// The reference small ResNet: conv 3×3 c→16 (no bias), BN, ReLU; basic blocks 16→16, 16→32 (stride 2),
    /// 32→64 (stride 2); adaptive average pool; linear 64→classes. Any input size works.
    /// </summary>
    public static Sequential ResNetSmall(int inChannels = 1, int numClasses = 10, Generator? generator = null) => new(
        ("conv1", new Conv2d(inChannels, 16, 3, 1, 1, bias: false, generator: generator)), ("bn1", new BatchNorm2d(16)), ("relu", new ReLU()),
        ("layer1", new BasicBlock(16, 16, 1, generator)), ("layer2", new BasicBlock(16, 32, 2, generator)), ("layer3", new BasicBlock(32, 64, 2, generator)),
        ("pool", new AdaptiveAvgPool2d(1)), ("flatten", new Flatten()), ("fc", new Linear(64, numClasses, generator: generator)));
}
