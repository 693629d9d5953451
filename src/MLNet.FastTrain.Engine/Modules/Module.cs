using MLNet.FastTrain.Engine.Serialization;

namespace MLNet.FastTrain.Engine.Modules;

/// <summary>
/// A layer or a network: named children, parameters and buffers, a training flag and a forward function,
/// with torch's semantics for naming (<c>block.0.weight</c>) and state dicts.
/// </summary>
public abstract class Module
{
    private readonly List<KeyValuePair<string, Module>> _children = [];
    private readonly List<KeyValuePair<string, Parameter?>> _parameters = [];
    private readonly List<KeyValuePair<string, Tensor?>> _buffers = [];

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Computes the module's output.</summary>
    public abstract Tensor Forward(Tensor input);

    /// <summary>Same as <see cref="Forward"/>.</summary>
    public Tensor Call(Tensor input) => Forward(input);

    /// <summary>Sets training mode on this module and every descendant.</summary>
    public Module Train(bool mode = true)
    {
        Training = mode;
        foreach (var child in _children) child.Value.Train(mode);
        return this;
    }

    /// <summary>Sets evaluation mode on this module and every descendant.</summary>
    public Module Eval() => Train(false);

    /// <summary>Adds or replaces a child module.</summary>
    protected internal void RegisterModule(string name, Module module)
    {
        ValidateName(name);
        ArgumentNullException.ThrowIfNull(module);
        Set(_children, name, module);
        OnChildrenChanged();
    }

    /// <summary>Called after a child is added or replaced, for modules that cache their children.</summary>
    protected virtual void OnChildrenChanged() { }

    /// <summary>Replaces an existing child, keeping its place (model surgery: a new head, an adapted stem).</summary>
    /// <exception cref="ArgumentException">There is no child of that name.</exception>
    public void ReplaceChild(string name, Module module)
    {
        if (!NamedChildren().Any(kv => kv.Key == name))
            throw new ArgumentException($"{GetType().Name} has no child named '{name}' to replace.", nameof(name));
        RegisterModule(name, module);
    }

    /// <summary>Adds or replaces a parameter (null registers an absent optional parameter, such as a bias).</summary>
    protected void RegisterParameter(string name, Parameter? parameter)
    {
        ValidateName(name);
        Set(_parameters, name, parameter);
    }

    /// <summary>Adds or replaces a buffer: state that is saved but not trained, such as running statistics.</summary>
    protected void RegisterBuffer(string name, Tensor? buffer)
    {
        ValidateName(name);
        Set(_buffers, name, buffer);
    }

    /// <summary>The direct child of that name.</summary>
    /// <exception cref="ArgumentException">There is no child of that name.</exception>
    public Module Child(string name)
    {
        foreach (var (n, m) in _children)
            if (n == name) return m;
        throw new ArgumentException($"{GetType().Name} has no child named '{name}'.", nameof(name));
    }

    /// <summary>The direct children, by name, in registration order.</summary>
    public IEnumerable<KeyValuePair<string, Module>> NamedChildren() => _children;

    /// <summary>This module (named "") and every descendant, depth first, with dotted names.</summary>
    public IEnumerable<KeyValuePair<string, Module>> NamedModules(string prefix = "")
    {
        yield return new(prefix, this);
        foreach (var (name, child) in _children)
            foreach (var item in child.NamedModules(Join(prefix, name)))
                yield return item;
    }

    /// <summary>Every parameter of this module and its descendants, with dotted names, each once.</summary>
    public IEnumerable<KeyValuePair<string, Parameter>> NamedParameters()
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (path, module) in NamedModules())
            foreach (var (name, p) in module._parameters)
                if (p is not null && seen.Add(p)) yield return new(Join(path, name), p);
    }

    /// <summary>Every parameter of this module and its descendants.</summary>
    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(kv => kv.Value);

    /// <summary>Every buffer of this module and its descendants, with dotted names.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedBuffers()
    {
        foreach (var (path, module) in NamedModules())
            foreach (var (name, b) in module._buffers)
                if (b is not null) yield return new(Join(path, name), b);
    }

    /// <summary>Sets <see cref="Tensor.RequiresGrad"/> on every parameter (false freezes the module).</summary>
    public Module RequiresGrad(bool requiresGrad = true)
    {
        foreach (var p in Parameters()) p.RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>Clears the gradient of every parameter.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.Grad = null;
    }

    /// <summary>Calls <paramref name="action"/> on every descendant and then on this module.</summary>
    public Module Apply(Action<Module> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        foreach (var (_, child) in _children) child.Apply(action);
        action(this);
        return this;
    }

    /// <summary>Every parameter and buffer by dotted name, sharing storage with the module.</summary>
    public StateDict StateDict()
    {
        var dict = new StateDict();
        foreach (var (path, module) in NamedModules())
        {
            foreach (var (name, p) in module._parameters) if (p is not null) dict.Add(Join(path, name), p.Detach());
            foreach (var (name, b) in module._buffers) if (b is not null) dict.Add(Join(path, name), b.Detach());
        }
        return dict;
    }

    /// <summary>
    /// Copies values into the module's parameters and buffers (their storage, so optimizers keep working).
    /// Strict (the default) requires exactly the module's names; any missing, unexpected or mis-shaped entry is
    /// named in the <see cref="StateDictMismatchException"/>, and nothing is copied unless all fit.
    /// </summary>
    public void LoadStateDict(StateDict state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var own = StateDict();
        var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToList();
        var misShaped = own.Where(kv => state.ContainsKey(kv.Key) && !state[kv.Key].Shape.SequenceEqual(kv.Value.Shape))
            .Select(kv => $"{kv.Key}: expected {ShapeText.Format(kv.Value.Shape)}, got {ShapeText.Format(state[kv.Key].Shape)}")
            .ToList();
        if (misShaped.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictMismatchException(missing, unexpected, misShaped);
        foreach (var (name, target) in own)
            if (state.TryGetValue(name, out var source)) target.CopyFrom(source);
    }

    private static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.', StringComparison.Ordinal))
            throw new ArgumentException($"'{name}' is not a valid member name: it must be non-empty and contain no '.'.", nameof(name));
    }

    private static void Set<T>(List<KeyValuePair<string, T>> list, string name, T value)
    {
        int i = list.FindIndex(kv => kv.Key == name);
        if (i >= 0) list[i] = new(name, value); else list.Add(new(name, value));
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;
}
