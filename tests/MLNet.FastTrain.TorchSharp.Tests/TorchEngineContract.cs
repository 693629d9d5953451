using MLNet.FastTrain.Learning;
using MLNet.FastTrain.TorchSharp;

namespace MLNet.FastTrain.Tests;

/// <summary>The engine contract on the torch engine (libtorch's CPU build here; the same code runs on CUDA).</summary>
public sealed class TorchEngineContract : EngineContract
{
    protected override string EngineName => "torch";

    protected override Learner OnEngine(Learner learner) => learner.UseEngine((model, optimizer) => new TorchEngine(model, optimizer, "cpu", threads: 2));
}
