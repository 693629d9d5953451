namespace MLNet.FastTrain.Engine.Autograd;

/// <summary>
/// Computes the gradients of an operation's inputs from the gradient of its output. Entries may be null for
/// inputs that need none.
/// </summary>
public delegate Tensor?[] BackwardFunction(Tensor outputGradient);

/// <summary>
/// The backward rule of a built-in operation: from what the forward pass kept (<paramref name="state"/>) and the
/// output's gradient, writes one gradient per input slot into <paramref name="grads"/> (null where none is needed).
/// A static lambda with a value-tuple state lets a training step record and run it without allocating.
/// </summary>
internal delegate void BackwardRule<TState>(TState state, Tensor outputGradient, Span<Tensor?> grads);

/// <summary>One recorded operation in the autograd graph: its name, its input slots and its backward rule.</summary>
internal abstract class GradNode
{
    private Tensor?[] _inputs = [];

    public string Name { get; private set; } = "";

    /// <summary>The operation's inputs by slot; a slot is null where an optional input (a bias) was not given.</summary>
    public ReadOnlySpan<Tensor?> Inputs => _inputs;

    /// <summary>Writes the gradient of each input slot (null where none is needed) into <paramref name="grads"/>.</summary>
    public abstract void Backward(Tensor outputGradient, Span<Tensor?> grads);

    /// <summary>Called when the tensor this node produced has been released: the node may be reused.</summary>
    public virtual void Recycle()
    {
    }

    protected void Set(string name, int slots)
    {
        Name = name;
        if (_inputs.Length != slots) _inputs = new Tensor?[slots];
    }

    protected Span<Tensor?> Slots => _inputs;

    protected void ClearInputs() => Array.Clear(_inputs);
}

/// <summary>A node whose rule is a <see cref="BackwardFunction"/> (the public way to record an operation).</summary>
internal sealed class FunctionNode : GradNode
{
    private readonly BackwardFunction _backward;

    public FunctionNode(string name, Tensor[] inputs, BackwardFunction backward)
    {
        Set(name, inputs.Length);
        inputs.CopyTo(Slots);
        _backward = backward;
    }

    public override void Backward(Tensor outputGradient, Span<Tensor?> grads)
    {
        var result = _backward(outputGradient);
        result.AsSpan(0, Math.Min(result.Length, grads.Length)).CopyTo(grads);
    }
}

/// <summary>
/// A node of a built-in operation, kept in a per-thread pool of its state type once the tensor it produced is
/// released, so a steady-state training step reuses the previous step's nodes.
/// </summary>
internal sealed class RuleNode<TState> : GradNode
{
    [ThreadStatic] private static Stack<RuleNode<TState>>? t_free;

    private TState _state = default!;
    private BackwardRule<TState>? _rule;

    public static RuleNode<TState> Rent(string name, TState state, BackwardRule<TState> rule, ReadOnlySpan<Tensor?> inputs)
    {
        var node = t_free is { Count: > 0 } free ? free.Pop() : new RuleNode<TState>();
        node.Set(name, inputs.Length);
        inputs.CopyTo(node.Slots);
        node._state = state;
        node._rule = rule;
        return node;
    }

    public override void Backward(Tensor outputGradient, Span<Tensor?> grads) => _rule!(_state, outputGradient, grads);

    public override void Recycle()
    {
        _state = default!;                                                         // hold no tensors while pooled
        _rule = null;
        ClearInputs();
        (t_free ??= new()).Push(this);
    }
}
