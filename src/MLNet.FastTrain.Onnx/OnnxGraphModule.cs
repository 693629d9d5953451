using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Onnx;

/// <summary>
/// An imported ONNX graph run as a module: its nodes in order, each reading named values and writing one. Nodes
/// with weights (Conv, BatchNormalization, Gemm, MatMul) are child modules named after their weights, so the graph
/// trains, saves a state dict and splits into layer groups like any other module.
/// </summary>
public sealed class OnnxGraphModule : Module
{
    private readonly string _input;
    private readonly string _output;
    private readonly IReadOnlyList<Step> _steps;

    internal OnnxGraphModule(string input, string output, IReadOnlyList<Step> steps, IEnumerable<KeyValuePair<string, Module>> children)
    {
        _input = input;
        _output = output;
        _steps = steps;
        foreach (var (name, child) in children) RegisterModule(name, child);
    }

    /// <summary>The number of operator steps.</summary>
    public int StepCount => _steps.Count;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [_input] = input };
        foreach (var step in _steps)
        {
            var args = new Tensor[step.Inputs.Length];
            for (int i = 0; i < args.Length; i++) args[i] = values[step.Inputs[i]];
            values[step.Output] = step.Run(args);
        }
        return values[_output];
    }

    /// <summary>One node: the values it reads, the value it writes, and what it computes.</summary>
    internal sealed record Step(string Name, string[] Inputs, string Output, Func<Tensor[], Tensor> Run);
}

/// <summary>A named group of child modules that only exists to give nested names (like "layer1.0.conv1").</summary>
internal sealed class ModuleContainer : Module
{
    public Module GetOrAdd(string name, Func<Module> create)
    {
        foreach (var (n, m) in NamedChildren()) if (n == name) return m;
        var module = create();
        RegisterModule(name, module);
        return module;
    }

    public override Tensor Forward(Tensor input) =>
        throw new NotSupportedException("A module container only names its children; the graph that owns it runs them.");
}
