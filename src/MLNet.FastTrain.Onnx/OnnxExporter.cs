using System.Globalization;
using AssemblyInformationalVersionAttribute = System.Reflection.AssemblyInformationalVersionAttribute;
using CustomAttributeExtensions = System.Reflection.CustomAttributeExtensions;
using System.Text.Json;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx.Proto;
using MLNet.FastTrain.Vision.Models;

namespace MLNet.FastTrain.Onnx;

/// <summary>
/// Writes a trained classifier as an ONNX model (opset 13) that ML.NET's <c>ApplyOnnxModel</c> and ONNX Runtime can
/// score: input <c>image</c>, float32 NCHW pixels in [0, 1] (the normalisation is inside the graph); output
/// <c>probabilities</c>, [batch, classes]. The batch size is dynamic, and so are height and width when the network
/// pools adaptively before its classifier. Label names are in the metadata entry <c>labels</c> (a JSON array).
/// </summary>
public static class OnnxExporter
{
    /// <summary>The operator set written.</summary>
    public const int Opset = 13;

    /// <summary>The graph's input name.</summary>
    public const string InputName = "image";

    /// <summary>The graph's output name.</summary>
    public const string OutputName = "probabilities";

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> (atomically: a temporary file, then a rename).</summary>
    /// <exception cref="OnnxExportException">The network holds a module with no ONNX form.</exception>
    public static void Export(TrainedModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var bytes = OnnxSerializer.Write(ToProto(model));
        var full = Path.GetFullPath(path);
        var temp = full + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Builds the ONNX model in memory.</summary>
    public static OnnxModelProto ToProto(TrainedModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var inv = CultureInfo.InvariantCulture;
        var (channels, height, width) = model.InputSize;
        var graph = new GraphBuilder();
        var (mean, std) = model.Normalization;
        var shape = new long[] { 1, channels, 1, 1 };
        var centred = graph.Node("Sub", "normalize.sub", [InputName, graph.Constant("normalize.mean", mean, shape)]);
        var normalised = graph.Node("Div", "normalize.div", [centred, graph.Constant("normalize.std", std, shape)]);
        var logits = graph.Emit(model.Network, "", normalised);
        graph.Node("Softmax", "softmax", [logits], OutputName, OnnxAttributeProto.Int("axis", 1));

        bool spatialDynamic = PoolsAdaptively(model.Network);
        var input = new OnnxValueInfo { Name = InputName, ElementType = OnnxDataType.Float };
        AddDim(input, null, "batch");
        AddDim(input, channels, null);
        AddDim(input, spatialDynamic ? null : height, "height");
        AddDim(input, spatialDynamic ? null : width, "width");
        var output = new OnnxValueInfo { Name = OutputName, ElementType = OnnxDataType.Float };
        AddDim(output, null, "batch");
        AddDim(output, model.Classes.Count, null);

        var proto = new OnnxModelProto
        {
            IrVersion = 7,
            ProducerName = "MLNet.FastTrain",
            ProducerVersion = CustomAttributeExtensions.GetCustomAttribute<AssemblyInformationalVersionAttribute>(typeof(OnnxExporter).Assembly)?.InformationalVersion ?? "",
        };
        proto.OpsetImports[""] = Opset;
        proto.Graph.Name = model.Architecture;
        proto.Graph.Nodes.AddRange(graph.Nodes);
        proto.Graph.Initializers.AddRange(graph.Initializers);
        proto.Graph.Inputs.Add(input);
        proto.Graph.Outputs.Add(output);
        proto.Metadata.Add(new("labels", JsonSerializer.Serialize(model.Classes)));
        proto.Metadata.Add(new("fasttrain.architecture", model.Architecture));
        proto.Metadata.Add(new("fasttrain.input", string.Create(inv, $"{channels},{height},{width}")));
        proto.Metadata.Add(new("fasttrain.mean", string.Join(",", mean.Select(v => v.ToString("R", inv)))));
        proto.Metadata.Add(new("fasttrain.std", string.Join(",", std.Select(v => v.ToString("R", inv)))));
        return proto;

        static void AddDim(OnnxValueInfo v, long? size, string? name)
        {
            v.Dims.Add(size);
            v.DimNames.Add(size is null ? name : null);
        }
    }

    /// <summary>True when the first flattening of the network comes after an adaptive pooling, so any image size works.</summary>
    private static bool PoolsAdaptively(Module network)
    {
        foreach (var (_, m) in network.NamedModules())
        {
            if (m is AdaptiveAvgPool2d) return true;
            if (m is Flatten) return false;
        }
        return false;
    }

    /// <summary>Accumulates nodes and initializers; value names are unique within the graph.</summary>
    private sealed class GraphBuilder
    {
        private int _next;

        public List<OnnxNodeProto> Nodes { get; } = [];

        public List<OnnxTensorProto> Initializers { get; } = [];

        public string Constant(string name, float[] data, long[] dims)
        {
            Initializers.Add(new OnnxTensorProto { Name = name, DataType = OnnxDataType.Float, Dims = dims, FloatData = data });
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
                            OnnxAttributeProto.IntList("pads", conv.Padding.H, conv.Padding.W, conv.Padding.H, conv.Padding.W),
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
                        OnnxAttributeProto.IntList("pads", pool.Padding, pool.Padding, pool.Padding, pool.Padding));
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
}
