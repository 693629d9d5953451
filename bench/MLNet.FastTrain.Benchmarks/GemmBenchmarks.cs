using BenchmarkDotNet.Attributes;
using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Benchmarks;

/// <summary>SGEMM through Functional.MatMul: the 1024³ headline shape and the reference nets' linear layers.</summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    private Tensor _a = null!, _b = null!;

    [Params("1024x1024x1024", "128x128x9216", "128x9216x128")]
    public string Shape { get; set; } = "";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var d = Shape.Split('x').Select(int.Parse).ToArray();
        _a = Tensor.Normal([d[0], d[2]], generator: new Generator(1));
        _b = Tensor.Normal([d[2], d[1]], generator: new Generator(2));
        EngineSettings.Threads = Threads;
    }

    [Benchmark]
    public Tensor MatMul()
    {
        using var scope = TensorScope.Begin();
        return Functional.MatMul(_a, _b);
    }
}
