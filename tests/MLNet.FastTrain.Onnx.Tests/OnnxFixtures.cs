using System.Diagnostics;
using System.Text.Json;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Models;

namespace MLNet.FastTrain.Onnx.Tests;

/// <summary>
/// What the ONNX tests need beyond the repository: the torch-exported ResNets and ONNX Runtime. scripts/test.sh
/// makes both (python3-torch from Debian, onnxruntime-node from npm); a test that finds them missing fails and says
/// how to make them.
/// </summary>
internal static class OnnxFixtures
{
    public static string Generated => RepoPaths.Get("tests", "onnx", "generated");

    public static string TorchModel(int depth)
    {
        var path = Path.Combine(Generated, $"resnet{depth}.onnx");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing: run scripts/test.sh, or /usr/bin/python3 tests/onnx/make_resnet_onnx.py tests/onnx/generated --depth {depth}.", path);
        return path;
    }

    public static float[] ReadFloats(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var data = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, data, 0, bytes.Length);
        return data;
    }

    public static int[] Shape(string jsonPath, string key) =>
        JsonDocument.Parse(File.ReadAllText(jsonPath)).RootElement.GetProperty(key).EnumerateArray().Select(e => e.GetInt32()).ToArray();

    /// <summary>Runs a model in ONNX Runtime through tests/onnx/ort_run.js; returns the first output's shape and data.</summary>
    public static (int[] Dims, float[] Data) RunOnnxRuntime(string model, float[] input, int[] shape)
    {
        var script = RepoPaths.Get("tests", "onnx", "ort_run.js");
        if (!Directory.Exists(RepoPaths.Get("tests", "onnx", "node_modules", "onnxruntime-node")))
            throw new DirectoryNotFoundException("onnxruntime-node is not installed: run scripts/test.sh, or (cd tests/onnx && npm install --ignore-scripts --no-package-lock).");
        var inputPath = Path.GetTempFileName();
        try
        {
            var bytes = new byte[input.Length * 4];
            Buffer.BlockCopy(input, 0, bytes, 0, bytes.Length);
            File.WriteAllBytes(inputPath, bytes);
            var psi = new ProcessStartInfo("node", [script, model, inputPath, string.Join(",", shape)])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            if (process.ExitCode != 0) throw new InvalidOperationException($"ONNX Runtime failed: {stderr.Result}");
            var root = JsonDocument.Parse(stdout.Result).RootElement;
            return (root.GetProperty("dims").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                root.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray());
        }
        finally
        {
            File.Delete(inputPath);
        }
    }

    /// <summary>A trained-looking classifier: seeded weights, batch-norm statistics moved off their defaults.</summary>
    public static TrainedModel Classifier(string architecture, int channels = 1, int classes = 10, int size = 28)
    {
        var g = new Generator(7);
        var net = TrainedModel.CreateNetwork(architecture, channels, classes, g);
        foreach (var (_, m) in net.NamedModules())
        {
            if (m is not BatchNorm2d bn) continue;
            Fill(bn.RunningMean, g, -0.3, 0.3);
            Fill(bn.RunningVar, g, 0.5, 2.0);
            Fill(bn.Weight!, g, 0.5, 1.5);
            Fill(bn.Bias!, g, -0.2, 0.2);
        }
        // A sharper classifier than a fresh one, so probabilities are far from uniform and errors show.
        var fc = net.NamedModules().Select(kv => kv.Value).OfType<Linear>().Last();
        var w = fc.Weight.AsSpan();
        for (int i = 0; i < w.Length; i++) w[i] *= 8;
        var names = Enumerable.Range(0, classes).Select(i => $"class {i}").ToArray();
        var mean = Enumerable.Range(0, channels).Select(i => 0.3f + 0.05f * i).ToArray();
        var std = Enumerable.Range(0, channels).Select(i => 0.25f + 0.02f * i).ToArray();
        return new TrainedModel(net, architecture, names, (mean, std), (channels, size, size));
    }

    private static void Fill(Tensor t, Generator g, double low, double high) =>
        Tensor.Uniform(t.ShapeArray(), low, high, g).AsSpan().CopyTo(t.AsSpan());

    /// <summary>The bundled validation images (1 channel, 28×28).</summary>
    public static ImageDataset Valid => IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini")).Valid;

    /// <summary>The first <paramref name="n"/> images of a dataset as [0, 1] pixels, NCHW.</summary>
    public static float[] Pixels(ImageDataset data, int n)
    {
        var loader = new DataLoader(data, n, shuffle: false, normalization: (Enumerable.Repeat(0f, data.Channels).ToArray(), Enumerable.Repeat(1f, data.Channels).ToArray()));
        return loader.Epoch(0).First().Images.ToArray();
    }

}
