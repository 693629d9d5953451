using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx.Proto;
using Xunit;

namespace MLNet.FastTrain.Onnx.Tests;

public class OnnxExportTests(Xunit.Abstractions.ITestOutputHelper log)
{
    [Theory]
    [InlineData("simple")]
    [InlineData("resnet")]
    [InlineData("resnet-wide")] // same names as resnet, other shapes: must not be taken for it
    [InlineData("resnet9")]     // same top-level names again, max-pools inside the stages
    [InlineData("resnet18")]
    public void ImportOfExportPredictsExactlyAsTheModel(string architecture)
    {
        var model = OnnxFixtures.Classifier(architecture);
        var path = Path.Combine(Path.GetTempPath(), $"fasttrain-roundtrip-{architecture}-{Environment.ProcessId}.onnx");
        try
        {
            OnnxExporter.Export(model, path);
            var imported = OnnxImporter.Load(path);
            Assert.Equal(architecture, imported.Architecture);
            Assert.True(imported.EndsWithSoftmax);
            Assert.Equal(model.Classes, imported.Classes);
            Assert.Equal(model.Normalization.Mean, imported.Normalization!.Value.Mean);
            Assert.Equal(model.Normalization.Std, imported.Normalization!.Value.Std);
            var again = imported.ToTrainedModel();
            Assert.Equal(model.InputSize, again.InputSize);

            var data = OnnxFixtures.Valid;
            var expected = model.Predict(data);
            var actual = again.Predict(data);
            Assert.Equal(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.Equal(expected[i].PredictedLabel, actual[i].PredictedLabel);
                Assert.Equal(expected[i].Score, actual[i].Score); // bit for bit
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("simple", 28, 28)]
    [InlineData("resnet", 28, 28)]
    [InlineData("resnet", 40, 36)] // height and width are dynamic after adaptive pooling
    [InlineData("resnet9", 28, 28)]
    [InlineData("resnet18", 28, 28)]
    public void OnnxRuntimeGivesOurProbabilities(string architecture, int height, int width)
    {
        var model = OnnxFixtures.Classifier(architecture);
        var path = Path.Combine(Path.GetTempPath(), $"fasttrain-ort-{architecture}-{height}-{Environment.ProcessId}.onnx");
        try
        {
            OnnxExporter.Export(model, path);
            int n = 5;
            var pixels = Tensor.Uniform([n, 1, height, width], 0, 1, new Generator(3));
            var (dims, data) = OnnxFixtures.RunOnnxRuntime(path, pixels.ToArray(), [n, 1, height, width]);
            Assert.Equal([n, 10], dims);

            Tensor ours;
            model.Network.Eval();
            using (GradRecorder.NoGrad())
            {
                var mean = Tensor.FromArray(model.Normalization.Mean, 1, 1, 1, 1);
                var std = Tensor.FromArray(model.Normalization.Std, 1, 1, 1, 1);
                ours = Functional.Softmax(model.Network.Forward(Functional.Div(Functional.Sub(pixels, mean), std)), 1);
            }
            var expected = ours.ToArray();
            double worst = expected.Zip(data).Max(p => Math.Abs(p.First - p.Second));
            log.WriteLine($"{architecture} {height}x{width}: max |ours - ONNX Runtime| = {worst:E2}");
            Assert.True(worst <= 1e-4, $"ONNX Runtime differs from ours by up to {worst:E2}");
            for (int i = 0; i < n; i++) Assert.Equal(1.0, data.Skip(10 * i).Take(10).Sum(), 4);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TheGraphTakesPixelsAndNamesItsLabels()
    {
        var model = OnnxFixtures.Classifier("resnet", channels: 3, classes: 4, size: 32);
        var proto = OnnxSerializer.Read(OnnxSerializer.Write(OnnxExporter.ToProto(model)));
        Assert.Equal(13, proto.OpsetImports[""]);
        Assert.Equal(7, proto.IrVersion);
        var input = Assert.Single(proto.Graph.Inputs);
        Assert.Equal(OnnxExporter.InputName, input.Name);
        Assert.Equal([null, 3L, null, null], input.Dims); // batch, height and width dynamic
        Assert.Equal(["batch", null, "height", "width"], input.DimNames);
        var output = Assert.Single(proto.Graph.Outputs);
        Assert.Equal([null, 4L], output.Dims);
        Assert.Equal("[\"class 0\",\"class 1\",\"class 2\",\"class 3\"]", proto.Metadata.Single(kv => kv.Key == "labels").Value);
        Assert.Equal(["Sub", "Div"], proto.Graph.Nodes.Take(2).Select(n => n.OpType));
        Assert.Equal("Softmax", proto.Graph.Nodes[^1].OpType);
        var allowed = new HashSet<string> { "Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "Add", "Flatten", "Softmax", "Sub", "Div" };
        Assert.All(proto.Graph.Nodes, n => Assert.Contains(n.OpType, allowed));
        Assert.Contains(proto.Graph.Initializers, t => t.Name == "layer2.downsample.0.weight");
    }

    [Fact]
    public void TheSimpleNetHasAFixedImageSize()
    {
        var proto = OnnxExporter.ToProto(OnnxFixtures.Classifier("simple"));
        Assert.Equal([null, 1L, 28L, 28L], proto.Graph.Inputs[0].Dims);
    }

    [Fact]
    public void AModuleWithoutAnOnnxFormIsNamed()
    {
        var net = new Sequential(("features", new Sequential(("conv", new Conv2d(1, 4, 3)), ("act", new GELU()))), ("flatten", new Flatten()), ("fc", new Linear(4 * 26 * 26, 2)));
        var model = new TrainedModel(net, "custom", ["a", "b"], ([0.5f], [0.5f]), (1, 28, 28));
        var path = Path.Combine(Path.GetTempPath(), $"fasttrain-gelu-{Environment.ProcessId}.onnx");
        var e = Assert.Throws<OnnxExportException>(() => OnnxExporter.Export(model, path));
        Assert.Contains("'features.act'", e.Message, StringComparison.Ordinal);
        Assert.Contains("GELU", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }
}
