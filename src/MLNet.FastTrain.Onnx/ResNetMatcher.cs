using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Onnx.Proto;
using MLNet.FastTrain.Vision.Models;

namespace MLNet.FastTrain.Onnx;

/// <summary>
/// Recognises a headless ResNet of basic blocks by its wiring, for exports that keep none of torch's names (CNTK's
/// ImageNet ResNet-18 in ML.NET's featurizer package): stem Conv → BatchNormalization → Relu → MaxPool, then blocks of
/// Conv → BN → Relu → Conv → BN → Add (with the block's input, or with a projection Conv → BN of it) → Relu, then
/// one average pool as the output. The weights are copied into the zoo layout with the same stage sizes, so the
/// network gets torchvision's names, layer groups and a head of its own.
/// </summary>
internal static class ResNetMatcher
{
    private sealed record ConvBn(OnnxNodeProto Conv, OnnxNodeProto Bn);

    /// <summary>The zoo body (every child up to and including the flatten; no classifier) and its architecture, or null.</summary>
    public static (Sequential Body, string Architecture)? TryMatch(List<OnnxNodeProto> nodes, Dictionary<string, OnnxTensorProto> consts, string input, string output)
    {
        var consumers = new Dictionary<string, List<OnnxNodeProto>>(StringComparer.Ordinal);
        foreach (var node in nodes)
            foreach (var i in node.Inputs)
            {
                if (!consumers.TryGetValue(i, out var list)) consumers[i] = list = [];
                list.Add(node);
            }
        List<OnnxNodeProto> Readers(string value, string op) => consumers.TryGetValue(value, out var l) ? l.Where(n => n.OpType == op).ToList() : [];
        OnnxNodeProto? Single(string value, string op) => Readers(value, op) is [var only] ? only : null;
        ConvBn? ConvBnOf(OnnxNodeProto conv) => Single(conv.Outputs[0], "BatchNormalization") is { } bn ? new ConvBn(conv, bn) : null;

        // Stem.
        if (Single(input, "Conv") is not { } stemConv || ConvBnOf(stemConv) is not { } stem) return null;
        if (Single(stem.Bn.Outputs[0], "Relu") is not { } stemRelu || Single(stemRelu.Outputs[0], "MaxPool") is not { } maxPool) return null;
        string x = maxPool.Outputs[0];

        // Blocks: (conv1, conv2, projection) each, in order.
        var blocks = new List<(ConvBn Conv1, ConvBn Conv2, ConvBn? Projection)>();
        while (true)
        {
            var convs = Readers(x, "Conv").Select(ConvBnOf).ToList();
            if (convs.Count == 0 || convs.Any(c => c is null)) break;
            ConvBn? main = null, projection = null;
            foreach (var c in convs)
            {
                if (Single(c!.Bn.Outputs[0], "Relu") is not null) main = c;
                else projection = c;
            }
            if (main is null || convs.Count > 2 || (convs.Count == 2 && projection is null)) return null;
            var relu1 = Single(main.Bn.Outputs[0], "Relu")!;
            if (Single(relu1.Outputs[0], "Conv") is not { } conv2Node || ConvBnOf(conv2Node) is not { } conv2) return null;
            if (Single(conv2.Bn.Outputs[0], "Add") is not { } add) return null;
            string shortcut = add.Inputs.First(i => i != conv2.Bn.Outputs[0]);
            if (shortcut != (projection?.Bn.Outputs[0] ?? x)) return null;
            if (Single(add.Outputs[0], "Relu") is not { } relu2) return null;
            blocks.Add((main, conv2, projection));
            x = relu2.Outputs[0];
        }
        if (Readers(x, "AveragePool") is not [var pool] && Readers(x, "GlobalAveragePool") is not [var _]) return null;
        var last = Readers(x, "AveragePool").Concat(Readers(x, "GlobalAveragePool")).Single();
        if (last.Outputs[0] != output) return null;

        // Stage sizes from where the width changes (the first block of every later stage projects).
        var stages = new List<int>();
        foreach (var block in blocks)
        {
            if (stages.Count == 0 || block.Projection is not null) stages.Add(0);
            stages[^1]++;
        }
        if (stages.Count != 4) return null;
        var shape = consts[stem.Conv.Inputs[1]].Dims;
        int inChannels = (int)shape[1];
        Sequential net = stages.SequenceEqual([2, 2, 2, 3])
            ? ModelZoo.ResNet18ImageNet(inChannels, 1)
            : ModelZoo.ResNet(stages, inChannels, 1);
        string architecture = stages.SequenceEqual([2, 2, 2, 3]) ? "resnet18-imagenet" : "onnx-resnet";

        var targets = new List<(Conv2d Conv, BatchNorm2d Bn, ConvBn Source)>
        {
            ((Conv2d)net.Child("conv1"), (BatchNorm2d)net.Child("bn1"), stem),
        };
        int index = 0;
        for (int stage = 0; stage < 4; stage++)
        {
            var layer = (Sequential)net.Child($"layer{stage + 1}");
            foreach (var (_, module) in layer.NamedChildren())
            {
                var block = (BasicBlock)module;
                var (c1, c2, projection) = blocks[index++];
                targets.Add((block.Conv1, block.Bn1, c1));
                targets.Add((block.Conv2, block.Bn2, c2));
                if ((block.Downsample is null) != (projection is null)) return null;
                if (block.Downsample is Sequential down && projection is not null)
                    targets.Add(((Conv2d)down[0], (BatchNorm2d)down[1], projection));
            }
        }
        foreach (var (conv, bn, source) in targets)
        {
            if (!Copy(conv, bn, source, consts)) return null;
        }
        // The body: everything but the classifier the zoo layout ends with.
        var body = new Sequential(Array.Empty<Module>());
        foreach (var (name, module) in net.NamedChildren())
            if (name != "fc") body.Append(name, module);
        return (body, architecture);
    }

    /// <summary>Copies one convolution's weights and its batch norm's parameters and statistics; false when a shape or setting differs.</summary>
    private static bool Copy(Conv2d conv, BatchNorm2d bn, ConvBn source, Dictionary<string, OnnxTensorProto> consts)
    {
        var attrs = source.Conv.Attributes.ToDictionary(a => a.Name);
        var w = consts[source.Conv.Inputs[1]];
        if (!w.Dims.Select(d => (int)d).SequenceEqual(conv.Weight.ShapeArray())) return false;
        if (source.Conv.Inputs.Count > 2 && source.Conv.Inputs[2].Length > 0) return false;
        (int, int) Pair(string name, int fallback) => attrs.TryGetValue(name, out var a) && a.Ints.Count >= 2 ? ((int)a.Ints[0], (int)a.Ints[1]) : (fallback, fallback);
        if (Pair("strides", 1) != conv.Stride || Pair("pads", 0) != conv.Padding || Pair("dilations", 1) != conv.Dilation) return false;
        var end = attrs.TryGetValue("pads", out var pads) && pads.Ints.Count == 4 ? ((int)pads.Ints[2], (int)pads.Ints[3]) : conv.Padding;
        if (end != (conv.PaddingEnd ?? conv.Padding)) return false;
        w.FloatData.CopyTo(conv.Weight.AsSpan());
        var bnInputs = source.Bn.Inputs;
        if (consts[bnInputs[1]].FloatData.Length != bn.NumFeatures) return false;
        consts[bnInputs[1]].FloatData.CopyTo(bn.Weight!.AsSpan());
        consts[bnInputs[2]].FloatData.CopyTo(bn.Bias!.AsSpan());
        consts[bnInputs[3]].FloatData.CopyTo(bn.RunningMean.AsSpan());
        consts[bnInputs[4]].FloatData.CopyTo(bn.RunningVar.AsSpan());
        float eps = source.Bn.Attributes.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
        return Math.Abs(eps - bn.Eps) < 1e-9;
    }
}
