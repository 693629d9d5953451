using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Tests;

/// <summary>The engine contract on the managed engine.</summary>
public sealed class ManagedEngineContract : EngineContract
{
    protected override string EngineName => "managed";

    protected override Learner OnEngine(Learner learner) => learner;
}
