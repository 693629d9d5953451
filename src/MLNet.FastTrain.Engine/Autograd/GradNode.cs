namespace MLNet.FastTrain.Engine.Autograd;

/// <summary>
/// Computes the gradients of an operation's inputs from the gradient of its output. Entries may be null for
/// inputs that need none.
/// </summary>
public delegate Tensor?[] BackwardFunction(Tensor outputGradient);

/// <summary>One recorded operation in the autograd graph: its name, its inputs and its backward rule.</summary>
internal sealed class GradNode(string name, Tensor[] inputs, BackwardFunction backward)
{
    public string Name { get; } = name;

    public Tensor[] Inputs { get; } = inputs;

    public BackwardFunction Backward { get; } = backward;
}
