using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Onnx.Proto;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.FastTrain.Onnx.Tests;

public class OnnxImportTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(18)]
    [InlineData(34)]
    public void TorchExportedResNetMatchesTorch(int depth)
    {
        var path = OnnxFixtures.TorchModel(depth);
        var imported = OnnxImporter.Load(path);
        Assert.Equal($"resnet{depth}", imported.Architecture);
        Assert.IsType<Sequential>(imported.Network);
        Assert.Null(imported.Normalization);
        Assert.False(imported.EndsWithSoftmax);

        var fixture = Path.ChangeExtension(path, null);
        var shape = OnnxFixtures.Shape(fixture + ".json", "input");
        var x = Tensor.FromArray(OnnxFixtures.ReadFloats(fixture + ".input.bin"), shape);
        var expected = OnnxFixtures.ReadFloats(fixture + ".output.bin");
        imported.Network.Eval();
        float[] actual;
        using (GradRecorder.NoGrad()) actual = imported.Network.Forward(x).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
        double scale = expected.Max(v => Math.Abs(v));
        output.WriteLine($"resnet{depth}: max |ours - torch| = {worst:E2}, max |torch| = {scale:F3}");
        Assert.True(worst <= 1e-4 * Math.Max(1, scale), $"max difference {worst:E2} against outputs up to {scale:F3}");
    }

    [Fact]
    public void ImportedResNetFineTunesWithANewHead()
    {
        var imported = OnnxImporter.Load(OnnxFixtures.TorchModel(18));
        var net = imported.Network;
        var groups = LayerGroups.Default(net);
        Assert.Equal(["body.early", "body.late", "head"], groups.Select(g => g.Name));
        DifferentialFineTune.ReplaceHead(net, 3, new Generator(1));
        var tune = new DifferentialFineTune(net, groups);
        var conv1 = ((Conv2d)((Sequential)net)[0]).Weight.ToArray();
        var fc = (Linear)((Sequential)net)[^1];
        var fcBefore = fc.Weight.ToArray();
        var optimizer = new Sgd(tune.CreateParamGroups(), learningRate: 0.01, momentum: 0.9);
        tune.Freeze(optimizer);
        net.Train();
        var x = Tensor.Uniform([4, 3, 64, 64], 0, 1, new Generator(2));
        var loss = Functional.CrossEntropy(net.Forward(x), [0, 1, 2, 0]);
        loss.Backward();
        optimizer.Step();
        Assert.Equal(conv1, ((Conv2d)((Sequential)net)[0]).Weight.ToArray()); // frozen body
        Assert.NotEqual(fcBefore, fc.Weight.ToArray());                        // the new head trains
        Assert.Equal([4, 3], net.Forward(x).ShapeArray());
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        var e = Assert.Throws<FileNotFoundException>(() => OnnxImporter.Load("/nonexistent/model.onnx"));
        Assert.Contains("/nonexistent/model.onnx", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RandomBytesAreNotAModel()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fasttrain-junk-{Environment.ProcessId}.onnx");
        var bytes = new byte[4096];
        new Random(5).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        try
        {
            var e = Assert.Throws<OnnxFormatException>(() => OnnxImporter.Load(path));
            Assert.Equal(path, e.Path);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TruncatedModelIsReported()
    {
        var bytes = OnnxSerializer.Write(OnnxExporter.ToProto(OnnxFixtures.Classifier("resnet")));
        var path = Path.Combine(Path.GetTempPath(), $"fasttrain-cut-{Environment.ProcessId}.onnx");
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length * 2 / 3).ToArray());
        try
        {
            Assert.Throws<OnnxFormatException>(() => OnnxImporter.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EveryUnsupportedOperatorAndAttributeIsListedWithItsNode()
    {
        var proto = OnnxExporter.ToProto(OnnxFixtures.Classifier("simple"));
        var nodes = proto.Graph.Nodes;
        var pool = nodes.First(n => n.OpType == "MaxPool");
        pool.Attributes.Add(OnnxAttributeProto.Int("ceil_mode", 1));
        var relu = nodes.First(n => n.OpType == "Relu");
        relu.OpType = "Selu";
        var conv = nodes.First(n => n.OpType == "Conv");
        conv.Attributes.Add(OnnxAttributeProto.Int("frobnicate", 2));
        var e = Assert.Throws<UnsupportedOnnxModelException>(() => OnnxImporter.Import(proto, "bad.onnx"));
        Assert.Equal(3, e.Problems.Count);
        Assert.Contains(e.Problems, p => p.Contains($"'{relu.Name}'", StringComparison.Ordinal) && p.Contains("Selu", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.Contains($"'{pool.Name}'", StringComparison.Ordinal) && p.Contains("ceil_mode", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.Contains($"'{conv.Name}'", StringComparison.Ordinal) && p.Contains("frobnicate", StringComparison.Ordinal));
        Assert.Contains("bad.onnx", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AGraphThatIsNoZooNetworkRunsAsAGraph()
    {
        // A residual MLP with a MatMul + Add classifier and a Reshape flatten: no zoo network, still imported whole.
        var g = new Generator(9);
        var proto = new OnnxModelProto { IrVersion = 7 };
        proto.OpsetImports[""] = 13;
        var graph = proto.Graph;
        graph.Inputs.Add(Value("x", [null, 2, 4, 4]));
        graph.Outputs.Add(Value("y", [null, 3]));
        graph.Initializers.Add(Const("c1.weight", [2, 2, 3, 3], g));
        graph.Initializers.Add(Const("c1.bias", [2], g));
        graph.Initializers.Add(Const("w", [32, 3], g));
        graph.Initializers.Add(Const("b", [3], g));
        graph.Initializers.Add(new OnnxTensorProto { Name = "shape", DataType = OnnxDataType.Int64, Dims = [2], Int64Data = [0, -1] });
        graph.Nodes.Add(Node("Conv", "conv", ["x", "c1.weight", "c1.bias"], "h", OnnxAttributeProto.IntList("pads", 1, 1, 1, 1)));
        graph.Nodes.Add(Node("Relu", "relu", ["h"], "r"));
        graph.Nodes.Add(Node("Add", "skip", ["r", "x"], "s"));
        graph.Nodes.Add(Node("Reshape", "flat", ["s", "shape"], "f"));
        graph.Nodes.Add(Node("MatMul", "mm", ["f", "w"], "m"));
        graph.Nodes.Add(Node("Add", "bias", ["m", "b"], "y"));
        var model = OnnxImporter.Import(proto);
        Assert.Equal(OnnxModel.GraphArchitecture, model.Architecture);
        Assert.Equal(["c1.weight", "c1.bias", "mm.weight"], model.Network.StateDict().Keys);

        var x = Tensor.Uniform([2, 2, 4, 4], -1, 1, new Generator(4));
        var conv = Functional.Conv2d(x, Tensor.FromArray(graph.Initializers[0].FloatData, 2, 2, 3, 3), Tensor.FromArray(graph.Initializers[1].FloatData, 2), (1, 1), (1, 1), (1, 1), 1);
        var s = Functional.Add(Functional.Relu(conv), x);
        var expected = Functional.Add(Functional.MatMul(Functional.Flatten(s, 1), Tensor.FromArray(graph.Initializers[2].FloatData, 32, 3)), Tensor.FromArray(graph.Initializers[3].FloatData, 3));
        var actual = model.Network.Forward(x);
        Assert.Equal(expected.ToArray(), actual.ToArray());
    }

    private static OnnxValueInfo Value(string name, long?[] dims)
    {
        var v = new OnnxValueInfo { Name = name, ElementType = OnnxDataType.Float };
        foreach (var d in dims) { v.Dims.Add(d); v.DimNames.Add(d is null ? "n" : null); }
        return v;
    }

    private static OnnxTensorProto Const(string name, int[] dims, Generator g) =>
        new() { Name = name, DataType = OnnxDataType.Float, Dims = dims.Select(d => (long)d).ToArray(), FloatData = Tensor.Uniform(dims, -0.5, 0.5, g).ToArray() };

    private static OnnxNodeProto Node(string op, string name, string[] inputs, string output, params OnnxAttributeProto[] attributes)
    {
        var n = new OnnxNodeProto { OpType = op, Name = name };
        n.Inputs.AddRange(inputs);
        n.Outputs.Add(output);
        n.Attributes.AddRange(attributes);
        return n;
    }
}
