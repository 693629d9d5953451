using MLNet.FastTrain.Vision.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using Managed = MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.TorchSharp;

/// <summary>
/// Builds the TorchSharp counterpart of a managed module tree, layer for layer and with the same names, so that a
/// state dict of either loads into the other.
/// </summary>
public static class TorchModules
{
    /// <summary>The TorchSharp network for <paramref name="model"/> (weights not copied: load a state dict).</summary>
    /// <exception cref="TorchEngineException">A layer has no TorchSharp counterpart; the message names it.</exception>
    public static nn.Module<Tensor, Tensor> Build(Managed.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Build(model, "");
    }

    private static nn.Module<Tensor, Tensor> Build(Managed.Module m, string path) => m switch
    {
        Managed.Sequential s => nn.Sequential(s.NamedChildren().Select(kv => (kv.Key, Build(kv.Value, Join(path, kv.Key))))),
        Managed.Conv2d c when c.PaddingEnd is { } end && end != c.Padding => new EndPaddedConv2d(c),
        Managed.Conv2d c => nn.Conv2d(c.InChannels, c.OutChannels, (c.KernelSize.H, c.KernelSize.W), (c.Stride.H, c.Stride.W),
            (c.Padding.H, c.Padding.W), (c.Dilation.H, c.Dilation.W), groups: c.Groups, bias: c.Bias is not null),
        Managed.BatchNorm2d b => nn.BatchNorm2d(b.NumFeatures, b.Eps, b.Momentum, affine: b.Weight is not null),
        Managed.Linear l => nn.Linear(l.Weight.Shape[1], l.Weight.Shape[0], hasBias: l.Bias is not null),
        Managed.ReLU => nn.ReLU(),
        Managed.LeakyReLU r => nn.LeakyReLU(r.NegativeSlope),
        Managed.GELU => nn.GELU(),
        Managed.Sigmoid => nn.Sigmoid(),
        Managed.Tanh => nn.Tanh(),
        Managed.Identity => nn.Identity(),
        Managed.Flatten f => nn.Flatten(f.StartDim),
        Managed.Dropout d => nn.Dropout(d.P),
        Managed.MaxPool2d p when p.PaddingEnd is { } end && end != p.Padding => new EndPaddedMaxPool2d(p.KernelSize, p.Stride, p.Padding, end),
        Managed.MaxPool2d p => nn.MaxPool2d(p.KernelSize, p.Stride, p.Padding),
        Managed.AvgPool2d p => nn.AvgPool2d(p.KernelSize, p.Stride, p.Padding, count_include_pad: p.CountIncludePad),
        Managed.AdaptiveAvgPool2d p => nn.AdaptiveAvgPool2d((p.OutputSize.Height, p.OutputSize.Width)),
        BasicBlock b => new TorchBasicBlock(b, path),
        _ => throw new TorchEngineException($"The torch engine has no counterpart for layer '{(path.Length == 0 ? "(root)" : path)}' ({m.GetType().Name}). "
            + "It builds Sequential, Conv2d, BatchNorm2d, Linear, the activations, pooling, Flatten, Dropout and the zoo's BasicBlock; train this model on the managed engine (--backend managed)."),
    };

    private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;

    /// <summary>torchvision's basic block with the managed block's member names.</summary>
    private sealed class TorchBasicBlock : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE0044, CA1859 // TorchSharp registers fields by name
        private nn.Module<Tensor, Tensor> conv1, bn1, conv2, bn2;
        private nn.Module<Tensor, Tensor>? downsample;
#pragma warning restore IDE0044, CA1859

        public TorchBasicBlock(BasicBlock block, string path) : base(nameof(BasicBlock))
        {
            conv1 = Build(block.Conv1, path + ".conv1");
            bn1 = Build(block.Bn1, path + ".bn1");
            conv2 = Build(block.Conv2, path + ".conv2");
            bn2 = Build(block.Bn2, path + ".bn2");
            downsample = block.Downsample is null ? null : Build(block.Downsample, path + ".downsample");
            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            var y = F.relu(bn1.call(conv1.call(input)));
            y = bn2.call(conv2.call(y));
            return F.relu(y.add_(downsample is null ? input : downsample.call(input)));
        }
    }

    /// <summary>A convolution padded more at the start than at the end (the ONNX pads of the ImageNet ResNet-18).</summary>
    private sealed class EndPaddedConv2d : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE0044 // TorchSharp registers fields by name
        private Parameter weight;
        private Parameter? bias;
#pragma warning restore IDE0044
        private readonly long[] _pad, _stride, _dilation;
        private readonly long _groups;

        public EndPaddedConv2d(Managed.Conv2d c) : base(nameof(EndPaddedConv2d))
        {
            var end = c.PaddingEnd!.Value;
            weight = new Parameter(zeros(c.OutChannels, c.InChannels / c.Groups, c.KernelSize.H, c.KernelSize.W));
            bias = c.Bias is null ? null : new Parameter(zeros(c.OutChannels));
            _pad = [c.Padding.W, end.W, c.Padding.H, end.H];
            _stride = [c.Stride.H, c.Stride.W];
            _dilation = [c.Dilation.H, c.Dilation.W];
            _groups = c.Groups;
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) =>
            F.conv2d(F.pad(input, _pad), weight, bias, _stride, [0, 0], _dilation, _groups);
    }

    /// <summary>A max-pool padded more at the start than at the end.</summary>
    private sealed class EndPaddedMaxPool2d(int kernel, int stride, int begin, int end) : nn.Module<Tensor, Tensor>(nameof(EndPaddedMaxPool2d))
    {
        private readonly long[] _pad = [begin, end, begin, end];

        public override Tensor forward(Tensor input) =>
            F.max_pool2d(F.pad(input, _pad, value: double.NegativeInfinity), [kernel, kernel], [stride, stride]);
    }
}
