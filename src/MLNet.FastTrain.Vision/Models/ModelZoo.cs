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
    public static Sequential ResNetSmall(int inChannels = 1, int numClasses = 10, Generator? generator = null) =>
        ThreeStageResNet(16, inChannels, numClasses, generator);

    /// <summary>
    /// The small ResNet at twice the width (32, 64 and 128 channels; about four times the work and parameters), for
    /// small images where the reference net runs out of capacity. Same child names, so the same layer groups.
    /// </summary>
    public static Sequential ResNetWide(int inChannels = 1, int numClasses = 10, Generator? generator = null) =>
        ThreeStageResNet(32, inChannels, numClasses, generator);

    /// <summary>
    /// A ResNet-9-style network for small images (after the DAWNBench CIFAR-10 design): a 3×3 stem c→w; then three
    /// stages of conv 3×3, BN, ReLU and max-pool 2 doubling the width (2w, 4w, 8w), the first and last followed by a
    /// basic block at that width; adaptive average pool; linear 8w→classes. It halves the map at every stage, so its work
    /// sits at 14×14 and below on 28×28 inputs, and it has the small ResNet's child names, hence the same layer groups.
    /// Default width 16 (16, 32, 64, 128 channels). Needs inputs of at least 8 pixels on a side.
    /// </summary>
    public static Sequential ResNet9(int inChannels = 1, int numClasses = 10, Generator? generator = null, int width = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        Sequential Stage(int cin, int cout, bool residual)
        {
            var stage = new Sequential(
                ("conv", new Conv2d(cin, cout, 3, 1, 1, bias: false, generator: generator)), ("bn", new BatchNorm2d(cout)),
                ("relu", new ReLU()), ("pool", new MaxPool2d(2)));
            return residual ? stage.Append("res", new BasicBlock(cout, cout, 1, generator)) : stage;
        }
        return new(
            ("conv1", new Conv2d(inChannels, width, 3, 1, 1, bias: false, generator: generator)), ("bn1", new BatchNorm2d(width)), ("relu", new ReLU()),
            ("layer1", Stage(width, 2 * width, residual: true)), ("layer2", Stage(2 * width, 4 * width, residual: false)),
            ("layer3", Stage(4 * width, 8 * width, residual: true)),
            ("pool", new AdaptiveAvgPool2d(1)), ("flatten", new Flatten()), ("fc", new Linear(8 * width, numClasses, generator: generator)));
    }

    private static Sequential ThreeStageResNet(int width, int inChannels, int numClasses, Generator? generator) => new(
        ("conv1", new Conv2d(inChannels, width, 3, 1, 1, bias: false, generator: generator)), ("bn1", new BatchNorm2d(width)), ("relu", new ReLU()),
        ("layer1", new BasicBlock(width, width, 1, generator)), ("layer2", new BasicBlock(width, 2 * width, 2, generator)),
        ("layer3", new BasicBlock(2 * width, 4 * width, 2, generator)),
        ("pool", new AdaptiveAvgPool2d(1)), ("flatten", new Flatten()), ("fc", new Linear(4 * width, numClasses, generator: generator)));

    /// <summary>
    /// ResNet-18 in torchvision's layout (conv1 7×7/2, bn1, relu, maxpool 3×3/2, layer1–layer4 of two basic blocks
    /// each, adaptive average pool, fc 512→classes), so torchvision weights load by name. Any input size works.
    /// </summary>
    public static Sequential ResNet18(int inChannels = 3, int numClasses = 1000, Generator? generator = null) =>
        ResNet([2, 2, 2, 2], inChannels, numClasses, generator);

    /// <summary>ResNet-34 in torchvision's layout: as <see cref="ResNet18"/> with 3, 4, 6 and 3 blocks per stage.</summary>
    public static Sequential ResNet34(int inChannels = 3, int numClasses = 1000, Generator? generator = null) =>
        ResNet([3, 4, 6, 3], inChannels, numClasses, generator);

    /// <summary>
    /// The layout of the ImageNet ResNet-18 that ML.NET ships (Microsoft.ML.DnnImageFeaturizer.ResNet18, a CNTK
    /// export): torchvision's names, but 2, 2, 2 and 3 blocks per stage, and the stem, the max-pool and each stage's
    /// strided 3×3 convolution padded one less at the end than at the start (ONNX pads [3, 3, 2, 2] and [1, 1, 0, 0]).
    /// The smallest input it takes is <see cref="MinimumInputSize"/> pixels on a side.
    /// </summary>
    public static Sequential ResNet18ImageNet(int inChannels = 3, int numClasses = 1000, Generator? generator = null)
    {
        var net = ResNet([2, 2, 2, 3], inChannels, numClasses, generator);
        ((Conv2d)net.Child("conv1")).PaddingEnd = (2, 2);
        ((MaxPool2d)net.Child("maxpool")).PaddingEnd = 0;
        for (int stage = 2; stage <= 4; stage++) ((BasicBlock)net.Child($"layer{stage}").Child("0")).Conv1.PaddingEnd = (0, 0);
        return net;
    }

    /// <summary>
    /// The smallest square input whose every feature map along the network's main path keeps at least one pixel:
    /// the convolutions and poolings outside shortcut branches, in order, each with its padding at both ends.
    /// </summary>
    public static int MinimumInputSize(Module network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var windows = new List<(int Kernel, int Stride, int Dilation, int Begin, int End)>();
        foreach (var (name, module) in network.NamedModules())
        {
            if (name.Split('.').Contains("downsample")) continue;
            switch (module)
            {
                case Conv2d c: windows.Add((c.KernelSize.H, c.Stride.H, c.Dilation.H, c.Padding.H, c.PaddingEnd?.H ?? c.Padding.H)); break;
                case MaxPool2d m: windows.Add((m.KernelSize, m.Stride, 1, m.Padding, m.PaddingEnd ?? m.Padding)); break;
                case AvgPool2d a: windows.Add((a.KernelSize, a.Stride, 1, a.Padding, a.Padding)); break;
            }
        }
        for (int size = 1; size <= 4096; size++)
        {
            int side = size;
            foreach (var (k, stride, d, b, e) in windows)
            {
                side = Functional.WindowOutputSize(side, k, stride, d, b, e);
                if (side < 1) break;
            }
            if (side >= 1) return size;
        }
        throw new ArgumentException("The network shrinks every input to nothing.", nameof(network));
    }

    /// <summary>
    /// Checks that the network computes something for [<paramref name="height"/>, <paramref name="width"/>] images by
    /// running one through it: a size below <see cref="MinimumInputSize"/> leaves a feature map empty, and sizes where a
    /// block's main path and its shortcut round differently cannot be added (the ImageNet layout's uneven padding
    /// needs floor(side / 4) to be a multiple of 8, so sides of 32k to 32k + 3). The message gives the nearest sizes
    /// that work.
    /// </summary>
    /// <exception cref="ArgumentException">The size does not fit the network.</exception>
    public static void CheckInputSize(Module network, int channels, int height, int width, string name)
    {
        ArgumentNullException.ThrowIfNull(network);
        int minimum = MinimumInputSize(network);
        if (height < minimum || width < minimum)
            throw new ArgumentException($"{height} × {width} images are too small for {name}: its strides need at least {minimum} × {minimum} pixels; train at a larger size (for example 64).");
        if (Runs(network, channels, height, width)) return;
        int? Near(int side, int step)
        {
            for (int s = side + step; s >= minimum && s <= side + 64; s += step)
                if (Runs(network, channels, s, s)) return s;
            return null;
        }
        int side = Math.Max(height, width);
        var options = new[] { Near(side, -1), Near(side, 1) }.OfType<int>().Select(s => $"{s} × {s}");
        throw new ArgumentException($"{name} cannot take {height} × {width} images: a block's shortcut and its main path come out of different sizes there. "
            + $"Sizes near it that work: {string.Join(" or ", options)}.");
    }

    private static bool Runs(Module network, int channels, int height, int width)
    {
        bool training = network.Training;
        network.Eval();
        try
        {
            using var noGrad = Engine.Autograd.GradRecorder.NoGrad();
            using var scope = TensorScope.Begin();
            network.Forward(Tensor.Zeros(1, channels, height, width));
            return true;
        }
        catch (ShapeMismatchException)
        {
            return false;
        }
        finally
        {
            network.Train(training);
        }
    }

    /// <summary>A torchvision-layout ResNet of basic blocks with the given number of blocks in each of four stages.</summary>
    public static Sequential ResNet(IReadOnlyList<int> blocksPerStage, int inChannels = 3, int numClasses = 1000, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(blocksPerStage);
        if (blocksPerStage.Count != 4 || blocksPerStage.Any(b => b < 1))
            throw new ArgumentException("A ResNet has four stages of at least one block each.", nameof(blocksPerStage));
        var net = new Sequential(
            ("conv1", new Conv2d(inChannels, 64, 7, 2, 3, bias: false, generator: generator)), ("bn1", new BatchNorm2d(64)),
            ("relu", new ReLU()), ("maxpool", new MaxPool2d(3, 2, 1)));
        int channels = 64;
        for (int stage = 0; stage < 4; stage++)
        {
            int width = 64 << stage;
            var blocks = new Sequential(Array.Empty<Module>());
            for (int b = 0; b < blocksPerStage[stage]; b++)
            {
                blocks.Append(b.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    new BasicBlock(channels, width, b == 0 && stage > 0 ? 2 : 1, generator));
                channels = width;
            }
            net.Append($"layer{stage + 1}", blocks);
        }
        return net.Append("avgpool", new AdaptiveAvgPool2d(1)).Append("flatten", new Flatten())
            .Append("fc", new Linear(channels, numClasses, generator: generator));
    }
}
