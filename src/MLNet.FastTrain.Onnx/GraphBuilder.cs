using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Onnx.Proto;
using MLNet.FastTrain.Vision.Models;

namespace MLNet.FastTrain.Onnx;

/// <summary>Accumulates nodes and initializers; value names are unique within the graph.</summary>
internal sealed class GraphBuilder
{
    private int _next;

    public List<OnnxNodeProto> Nodes { get; } = [];

    public List<OnnxTensorProto> Initializers { get; } = [];

    public string Constant(string name, float[] data, long[] dims)
    {
        Initializers.Add(new OnnxTensorProto { Name = name, DataType = OnnxDataType.Float, Dims = dims, FloatData = data });
        return name;
    }

    public string Int64Constant(string name, params long[] data)
    {
        Initializers.Add(new OnnxTensorProto { Name = name, DataType = OnnxDataType.Int64, Dims = [data.Length], Int64Data = data });
        return name;
    }

    public string Weight(string name, Tensor tensor) =>
        Constant(name, tensor.ToArray(), tensor.ShapeArray().Select(d => (long)d).ToArray());

    public string Node(string op, string name, string[] inputs, string? output = null, params OnnxAttributeProto[] attributes)
    {
        var node = new OnnxNodeProto { OpType = op, Name = name };
        node.Inputs.AddRange(inputs);
        node.Outputs.Add(output ?? $"{name}:{_next++}");
        node.Attributes.AddRange(attributes);
        Nodes.Add(node);
        return node.Outputs[0];
    }

    /// <summary>Emits the nodes of one module applied to <paramref name="input"/>; returns the output's value name.</summary>
    public string Emit(Module module, string path, string input)
    {
        string Child(string name) => path.Length == 0 ? name : $"{path}.{name}";
        string Self(string fallback) => path.Length == 0 ? fallback : path;
        switch (module)
        {
            case Sequential seq:
                foreach (var (name, child) in seq.NamedChildren()) input = Emit(child, Child(name), input);
                return input;
            case BasicBlock block:
                {
                    var y = Emit(block.Conv1, Child("conv1"), input);
                    y = Emit(block.Bn1, Child("bn1"), y);
                    y = Node("Relu", Child("relu1"), [y]);
                    y = Emit(block.Conv2, Child("conv2"), y);
                    y = Emit(block.Bn2, Child("bn2"), y);
                    var shortcut = block.Downsample is null ? input : Emit(block.Downsample, Child("downsample"), input);
                    y = Node("Add", Child("add"), [y, shortcut]);
                    return Node("Relu", Child("relu2"), [y]);
                }
            case Conv2d conv:
                {
                    var inputs = new List<string> { input, Weight(Child("weight"), conv.Weight) };
                    if (conv.Bias is not null) inputs.Add(Weight(Child("bias"), conv.Bias));
                    return Node("Conv", Self("conv"), [.. inputs], null,
                        OnnxAttributeProto.IntList("kernel_shape", conv.KernelSize.H, conv.KernelSize.W),
                        OnnxAttributeProto.IntList("strides", conv.Stride.H, conv.Stride.W),
                        OnnxAttributeProto.IntList("pads", conv.Padding.H, conv.Padding.W, (conv.PaddingEnd ?? conv.Padding).H, (conv.PaddingEnd ?? conv.Padding).W),
                        OnnxAttributeProto.IntList("dilations", conv.Dilation.H, conv.Dilation.W),
                        OnnxAttributeProto.Int("group", conv.Groups));
                }
            case BatchNorm2d bn:
                {
                    long[] dims = [bn.NumFeatures];
                    var scale = bn.Weight is null ? Constant(Child("weight"), Enumerable.Repeat(1f, bn.NumFeatures).ToArray(), dims) : Weight(Child("weight"), bn.Weight);
                    var bias = bn.Bias is null ? Constant(Child("bias"), new float[bn.NumFeatures], dims) : Weight(Child("bias"), bn.Bias);
                    return Node("BatchNormalization", Self("bn"),
                        [input, scale, bias, Weight(Child("running_mean"), bn.RunningMean), Weight(Child("running_var"), bn.RunningVar)], null,
                        OnnxAttributeProto.Float("epsilon", (float)bn.Eps));
                }
            case Linear linear:
                {
                    var inputs = new List<string> { input, Weight(Child("weight"), linear.Weight) };
                    if (linear.Bias is not null) inputs.Add(Weight(Child("bias"), linear.Bias));
                    return Node("Gemm", Self("linear"), [.. inputs], null, OnnxAttributeProto.Int("transB", 1));
                }
            case ReLU:
                return Node("Relu", Self("relu"), [input]);
            case LeakyReLU leaky:
                return Node("LeakyRelu", Self("leaky_relu"), [input], null, OnnxAttributeProto.Float("alpha", (float)leaky.NegativeSlope));
            case Sigmoid:
                return Node("Sigmoid", Self("sigmoid"), [input]);
            case Tanh:
                return Node("Tanh", Self("tanh"), [input]);
            case MaxPool2d pool:
                return Node("MaxPool", Self("maxpool"), [input], null,
                    OnnxAttributeProto.IntList("kernel_shape", pool.KernelSize, pool.KernelSize),
                    OnnxAttributeProto.IntList("strides", pool.Stride, pool.Stride),
                    OnnxAttributeProto.IntList("pads", pool.Padding, pool.Padding, pool.PaddingEnd ?? pool.Padding, pool.PaddingEnd ?? pool.Padding));
            case AvgPool2d pool:
                return Node("AveragePool", Self("avgpool"), [input], null,
                    OnnxAttributeProto.IntList("kernel_shape", pool.KernelSize, pool.KernelSize),
                    OnnxAttributeProto.IntList("strides", pool.Stride, pool.Stride),
                    OnnxAttributeProto.IntList("pads", pool.Padding, pool.Padding, pool.Padding, pool.Padding),
                    OnnxAttributeProto.Int("count_include_pad", pool.CountIncludePad ? 1 : 0));
            case AdaptiveAvgPool2d pool when pool.OutputSize == (1, 1):
                return Node("GlobalAveragePool", Self("avgpool"), [input]);
            case Flatten flatten:
                return Node("Flatten", Self("flatten"), [input], null, OnnxAttributeProto.Int("axis", flatten.StartDim));
            case Dropout or Identity:
                return input; // both are the identity at inference
            default:
                throw new OnnxExportException(
                    $"The module '{Self("(root)")}' ({module.GetType().Name}) has no ONNX form; supported are Sequential, BasicBlock, Conv2d, "
                    + "BatchNorm2d, Linear, ReLU, LeakyReLU, Sigmoid, Tanh, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Dropout and Identity.");
        }
    }
}
