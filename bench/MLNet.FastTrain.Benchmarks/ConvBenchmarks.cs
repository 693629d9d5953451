using BenchmarkDotNet.Attributes;
using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Benchmarks;

/// <summary>Forward and forward+backward of the convolution shapes of the reference nets at batch 128.</summary>
[MemoryDiagnoser]
public class ConvBenchmarks
{
    private Tensor _x = null!, _w = null!;
    private (int, int) _stride, _padding;

    // name: in-channels, out-channels, size, kernel, stride, padding
    [Params("simple.conv1:1-32-28-k3", "simple.conv2:32-64-26-k3", "resnet.stem:1-16-28-k3-p1", "resnet.layer1:16-16-28-k3-p1", "resnet.layer2:16-32-28-k3-s2-p1", "resnet.layer3:64-64-7-k3-p1")]
    public string Layer { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var spec = Layer.Split(':')[1].Split('-');
        int cin = int.Parse(spec[0]), cout = int.Parse(spec[1]), size = int.Parse(spec[2]), k = int.Parse(spec[3][1..]);
        int s = spec.FirstOrDefault(p => p.StartsWith('s')) is { } sv ? int.Parse(sv[1..]) : 1;
        int p = spec.FirstOrDefault(q => q.StartsWith('p')) is { } pv ? int.Parse(pv[1..]) : 0;
        _stride = (s, s);
        _padding = (p, p);
        _x = Tensor.Normal([128, cin, size, size], generator: new Generator(1));
        _w = Tensor.Normal([cout, cin, k, k], 0, 0.1, new Generator(2));
        _w.RequiresGrad = true;
        EngineSettings.Threads = Environment.ProcessorCount;
    }

    [Benchmark]
    public double Forward()
    {
        using var scope = TensorScope.Begin();
        using var noGrad = MLNet.FastTrain.Engine.Autograd.GradRecorder.NoGrad();
        return Functional.Conv2d(_x, _w, null, _stride, _padding).Length;
    }

    [Benchmark]
    public double ForwardBackward()
    {
        using var scope = TensorScope.Begin();
        var y = Functional.Conv2d(_x, _w, null, _stride, _padding);
        y.Backward(Tensor.Ones(y.ShapeArray()));
        _w.Grad = null;
        return y.Length;
    }
}
