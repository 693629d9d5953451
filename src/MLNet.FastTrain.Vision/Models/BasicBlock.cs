using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Vision.Models;

/// <summary>
/// The residual block of ResNet-18/34 (He et al., 2016): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
/// with 3×3 convolutions and a 1×1 convolution + batch-norm shortcut where the shape changes.
/// Member names follow torchvision (conv1, bn1, conv2, bn2, downsample.0, downsample.1).
/// </summary>
public sealed class BasicBlock : Module
{
    /// <summary>Creates the block.</summary>
    public BasicBlock(int inChannels, int outChannels, int stride = 1, Generator? generator = null)
    {
        Conv1 = new Conv2d(inChannels, outChannels, 3, stride, 1, bias: false, generator: generator);
        Bn1 = new BatchNorm2d(outChannels);
        Conv2 = new Conv2d(outChannels, outChannels, 3, 1, 1, bias: false, generator: generator);
        Bn2 = new BatchNorm2d(outChannels);
        RegisterModule("conv1", Conv1);
        RegisterModule("bn1", Bn1);
        RegisterModule("conv2", Conv2);
        RegisterModule("bn2", Bn2);
        if (stride != 1 || inChannels != outChannels)
        {
            Downsample = new Sequential(new Conv2d(inChannels, outChannels, 1, stride, bias: false, generator: generator), new BatchNorm2d(outChannels));
            RegisterModule("downsample", Downsample);
        }
    }

    /// <summary>First 3×3 convolution (carries the stride).</summary>
    public Conv2d Conv1 { get; }

    /// <summary>Batch-norm after the first convolution.</summary>
    public BatchNorm2d Bn1 { get; }

    /// <summary>Second 3×3 convolution.</summary>
    public Conv2d Conv2 { get; }

    /// <summary>Batch-norm after the second convolution.</summary>
    public BatchNorm2d Bn2 { get; }

    /// <summary>The 1×1 projection shortcut, or null for the identity.</summary>
    public Sequential? Downsample { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        // Each batch-norm runs fused with what follows it: the ReLU, and for bn2 the shortcut sum as well.
        var y = Bn1.ForwardRelu(Conv1.Forward(input));
        return Bn2.ForwardRelu(Conv2.Forward(y), Downsample?.Forward(input) ?? input);
    }
}
