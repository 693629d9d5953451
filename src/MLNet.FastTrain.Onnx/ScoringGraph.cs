using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx.Proto;

namespace MLNet.FastTrain.Onnx;

/// <summary>How <see cref="ScoringGraph"/> writes a classifier for ML.NET's <c>ApplyOnnxModel</c>.</summary>
public sealed class ScoringGraphOptions
{
    /// <summary>The graph's input: float32 pixels [1, C, H, W] (the ML.NET column it reads). Default "image".</summary>
    public string InputName { get; set; } = OnnxExporter.InputName;

    /// <summary>What the input pixels are multiplied by to bring them to [0, 1]: 1 (default) or 1/255.</summary>
    public float InputScale { get; set; } = 1f;

    /// <summary>The class probabilities, a rank-1 tensor [K] in class order. Default "Score".</summary>
    public string ScoreName { get; set; } = "Score";

    /// <summary>The most probable class, a rank-0 int64 tensor. Default "PredictedIndex".</summary>
    public string IndexName { get; set; } = "PredictedIndex";

    /// <summary>
    /// Score with test-time augmentation inside the graph: the plain image, its mirror and three shifted crops (the
    /// shift is a sixteenth of the side, at least one pixel, with reflected borders), mixed as fastai does:
    /// Beta × plain + (1 − Beta) × the mean of the four augmented copies. Default false.
    /// </summary>
    public bool TestTimeAugmentation { get; set; }

    /// <summary>fastai's β: the plain image's weight when <see cref="TestTimeAugmentation"/> is on. Default 0.25.</summary>
    public double Beta { get; set; } = 0.25;
}

/// <summary>
/// Writes one classifier, or the members of a snapshot ensemble (their probabilities averaged), as an ONNX graph
/// with fixed shapes that ML.NET's <c>ApplyOnnxModel</c> reads as a known-size <c>Score</c> vector and a scalar
/// class index: input [1, C, H, W], outputs [K] and [].
/// </summary>
public static class ScoringGraph
{
    /// <summary>Builds the graph; every member must take the same input size and have the same classes.</summary>
    /// <exception cref="OnnxExportException">A network holds a module with no ONNX form.</exception>
    public static OnnxModelProto ToProto(IReadOnlyList<TrainedModel> members, ScoringGraphOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0) throw new ArgumentException("A scoring graph needs at least one model.", nameof(members));
        options ??= new ScoringGraphOptions();
        if (!(options.Beta is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(options), $"Beta must lie in [0, 1], not {options.Beta}.");
        var first = members[0];
        foreach (var m in members)
        {
            if (m.InputSize != first.InputSize || !m.Classes.SequenceEqual(first.Classes))
                throw new ArgumentException("The members of an ensemble must share their input size and classes.", nameof(members));
        }
        var (channels, height, width) = first.InputSize;
        int classes = first.Classes.Count;
        var graph = new GraphBuilder();

        string pixels = options.InputName;
        if (options.InputScale != 1f)
            pixels = graph.Node("Mul", "input.scale", [pixels, graph.Constant("input.scale.factor", [options.InputScale], [])]);

        // The batch the networks see: the image alone, or the image and its augmented copies.
        string batch = options.TestTimeAugmentation ? Augmented(graph, pixels, height, width) : pixels;
        int copies = options.TestTimeAugmentation ? 5 : 1;

        var memberProbabilities = new List<string>();
        for (int i = 0; i < members.Count; i++)
        {
            string prefix = members.Count == 1 ? "" : $"member{i}";
            memberProbabilities.Add(Probabilities(graph, members[i], prefix, batch));
        }
        string probabilities = memberProbabilities.Count == 1 ? memberProbabilities[0] : graph.Node("Mean", "ensemble.mean", [.. memberProbabilities]);

        // [copies, K] → [K]: a weighted sum over the copies (the plain image first).
        float plain = options.TestTimeAugmentation ? (float)options.Beta : 1f;
        float each = options.TestTimeAugmentation ? (float)((1 - options.Beta) / (copies - 1)) : 0f;
        var weights = new float[copies];
        weights[0] = plain;
        for (int c = 1; c < copies; c++) weights[c] = each;
        string weighted = graph.Node("Mul", "tta.weight", [probabilities, graph.Constant("tta.weights", weights, [copies, 1])]);
        graph.Node("ReduceSum", "tta.sum", [weighted, graph.Int64Constant("tta.axes", 0)], options.ScoreName, OnnxAttributeProto.Int("keepdims", 0));
        graph.Node("ArgMax", "argmax", [options.ScoreName], options.IndexName, OnnxAttributeProto.Int("axis", 0), OnnxAttributeProto.Int("keepdims", 0));

        var input = new OnnxValueInfo { Name = options.InputName, ElementType = OnnxDataType.Float };
        input.Dims.AddRange([1, channels, height, width]);
        input.DimNames.AddRange([null, null, null, null]);
        var score = new OnnxValueInfo { Name = options.ScoreName, ElementType = OnnxDataType.Float };
        score.Dims.Add(classes);
        score.DimNames.Add(null);
        var index = new OnnxValueInfo { Name = options.IndexName, ElementType = OnnxDataType.Int64 };

        var proto = new OnnxModelProto { IrVersion = 7, ProducerName = "MLNet.FastTrain" };
        proto.OpsetImports[""] = OnnxExporter.Opset;
        proto.Graph.Name = first.Architecture;
        proto.Graph.Nodes.AddRange(graph.Nodes);
        proto.Graph.Initializers.AddRange(graph.Initializers);
        proto.Graph.Inputs.Add(input);
        proto.Graph.Outputs.Add(score);
        proto.Graph.Outputs.Add(index);
        proto.Metadata.Add(new("labels", System.Text.Json.JsonSerializer.Serialize(first.Classes)));
        proto.Metadata.Add(new("fasttrain.members", members.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        proto.Metadata.Add(new("fasttrain.tta", options.TestTimeAugmentation ? "1" : "0"));
        return proto;
    }

    /// <summary>The serialised graph.</summary>
    public static byte[] ToBytes(IReadOnlyList<TrainedModel> members, ScoringGraphOptions? options = null) => OnnxSerializer.Write(ToProto(members, options));

    /// <summary>Normalise, run the network, softmax: [N, C, H, W] in [0, 1] → [N, K].</summary>
    private static string Probabilities(GraphBuilder graph, TrainedModel model, string prefix, string input)
    {
        string Name(string n) => prefix.Length == 0 ? n : $"{prefix}.{n}";
        var (mean, std) = model.Normalization;
        long[] shape = [1, mean.Length, 1, 1];
        var centred = graph.Node("Sub", Name("normalize.sub"), [input, graph.Constant(Name("normalize.mean"), mean, shape)]);
        var normalised = graph.Node("Div", Name("normalize.div"), [centred, graph.Constant(Name("normalize.std"), std, shape)]);
        var logits = graph.Emit(model.Network, prefix, normalised);
        return graph.Node("Softmax", Name("softmax"), [logits], null, OnnxAttributeProto.Int("axis", 1));
    }

    /// <summary>
    /// [1, C, H, W] → [5, C, H, W]: the image, its mirror, and crops shifted by (+d, +d) and (−d, −d) of the image
    /// and by (+d, −d) of the mirror, cut from the source padded by d with reflected borders.
    /// </summary>
    private static string Augmented(GraphBuilder graph, string image, int height, int width)
    {
        int d = Math.Max(1, Math.Min(height, width) / 16);
        string mirror = graph.Node("Slice", "tta.mirror", [image, graph.Int64Constant("tta.mirror.starts", width - 1),
            graph.Int64Constant("tta.mirror.ends", -width - 1), graph.Int64Constant("tta.mirror.axes", 3), graph.Int64Constant("tta.mirror.steps", -1)]);
        string Shifted(string source, string name, int dy, int dx)
        {
            string padded = graph.Node("Pad", $"{name}.pad", [source, graph.Int64Constant($"{name}.pads", 0, 0, d, d, 0, 0, d, d)], null,
                OnnxAttributeProto.String("mode", "reflect"));
            return graph.Node("Slice", $"{name}.crop", [padded, graph.Int64Constant($"{name}.starts", d + dy, d + dx),
                graph.Int64Constant($"{name}.ends", d + dy + height, d + dx + width), graph.Int64Constant($"{name}.axes", 2, 3)]);
        }
        string a = Shifted(image, "tta.shift0", d, d);
        string b = Shifted(mirror, "tta.shift1", d, -d);
        string c = Shifted(image, "tta.shift2", -d, -d);
        return graph.Node("Concat", "tta.batch", [image, mirror, a, b, c], null, OnnxAttributeProto.Int("axis", 0));
    }
}
