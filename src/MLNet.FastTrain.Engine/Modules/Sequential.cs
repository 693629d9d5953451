using MLNet.FastTrain.Engine.Autograd;

namespace MLNet.FastTrain.Engine.Modules;

/// <summary>Runs its children in order, each on the previous one's output. Children are named "0", "1", … unless named.</summary>
public sealed class Sequential : Module
{
    private readonly List<string> _order = [];
    private Module[]? _sequence;

    /// <summary>Creates a sequence of unnamed modules.</summary>
    public Sequential(params Module[] modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        for (int i = 0; i < modules.Length; i++) Append(i.ToString(System.Globalization.CultureInfo.InvariantCulture), modules[i]);
    }

    /// <summary>Creates a sequence of named modules.</summary>
    public Sequential(params (string Name, Module Module)[] modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        foreach (var (name, module) in modules) Append(name, module);
    }

    /// <summary>The number of children.</summary>
    public int Count => _order.Count;

    /// <summary>The child at a position; setting replaces it (for example, a new head).</summary>
    public Module this[int index]
    {
        get => Child(_order[index]);
        set => RegisterModule(_order[index], value);
    }

    /// <summary>Adds a module at the end.</summary>
    public Sequential Append(string name, Module module)
    {
        if (_order.Contains(name)) throw new ArgumentException($"Sequential already has a child named '{name}'.", nameof(name));
        RegisterModule(name, module);
        _order.Add(name);
        _sequence = null;
        return this;
    }

    /// <inheritdoc />
    protected override void OnChildrenChanged() => _sequence = null;

    /// <summary>The children in running order (cached until the sequence changes).</summary>
    private Module[] Children() => _sequence ??= InOrder();

    private Module[] InOrder()
    {
        var byName = NamedChildren().ToDictionary(kv => kv.Key, kv => kv.Value);
        return _order.Select(name => byName[name]).ToArray();
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        if (!GradRecorder.IsEnabled && TensorScope.Active is { } scope) return ForwardReleasing(input, scope);
        var children = Children();
        var x = input;
        for (int i = 0; i < children.Length; i += StepForward(children, i, ref x)) { }
        return x;
    }

    /// <summary>
    /// Runs child i on x and says how many children that covered: a batch-norm followed by a ReLU runs as one fused
    /// op (the same values and gradients with fewer passes over memory and one activation fewer kept for backward).
    /// </summary>
    private static int StepForward(Module[] children, int i, ref Tensor x)
    {
        if (children[i] is BatchNorm2d bn && i + 1 < children.Length && children[i + 1] is ReLU)
        {
            x = bn.ForwardRelu(x);
            return 2;
        }
        x = children[i].Forward(x);
        return 1;
    }

    /// <summary>
    /// An evaluation pass inside a tensor scope: each child's intermediates go back to the pool as soon as the
    /// child returns, and the previous child's output once the next one has read it, so the pass's peak memory is
    /// about one layer's working set rather than every activation of the network (nothing is kept for backward).
    /// </summary>
    private Tensor ForwardReleasing(Tensor input, TensorScope scope)
    {
        var children = Children();
        var x = input;
        for (int i = 0; i < children.Length;)
        {
            Tensor y = x;
            using (var step = TensorScope.BeginTransient())
            {
                i += StepForward(children, i, ref y);
                step.Keep(y);
            }
            // A view of x (Flatten, Identity) keeps x's memory alive; the caller's input is never ours to free.
            if (!ReferenceEquals(x, input) && !ReferenceEquals(x.Storage, y.Storage)) scope.ReleaseNow(x);
            x = y;
        }
        return x;
    }
}
