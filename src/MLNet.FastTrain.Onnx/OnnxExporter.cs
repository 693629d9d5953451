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
        Engine.Serialization.AtomicFile.WriteAllBytes(path, bytes);
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
}
