namespace MLNet.FastTrain.Engine.Modules;

/// <summary>Runs its children in order, each on the previous one's output. Children are named "0", "1", … unless named.</summary>
public sealed class Sequential : Module
{
    private readonly List<string> _order = [];

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
        get => NamedChildren().First(kv => kv.Key == _order[index]).Value;
        set => RegisterModule(_order[index], value);
    }

    /// <summary>Adds a module at the end.</summary>
    public Sequential Append(string name, Module module)
    {
        if (_order.Contains(name)) throw new ArgumentException($"Sequential already has a child named '{name}'.", nameof(name));
        RegisterModule(name, module);
        _order.Add(name);
        return this;
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        foreach (var (_, module) in NamedChildren()) x = module.Forward(x);
        return x;
    }
}
