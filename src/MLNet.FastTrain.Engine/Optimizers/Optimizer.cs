using System.Globalization;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Serialization;

namespace MLNet.FastTrain.Engine.Optimizers;

/// <summary>
/// Updates parameters from their gradients, group by group. Holds per-parameter state (momentum buffers,
/// moment estimates) that can be saved, loaded and cleared.
/// </summary>
public abstract class Optimizer
{
    private readonly List<ParamGroup> _groups = [];
    private readonly Dictionary<Parameter, Dictionary<string, Tensor>> _state = new(ReferenceEqualityComparer.Instance);

    /// <summary>Creates the optimizer with groups whose unset hyperparameters take <paramref name="defaults"/>.</summary>
    protected Optimizer(IEnumerable<ParamGroup> groups, ParamGroup defaults)
    {
        ArgumentNullException.ThrowIfNull(groups);
        Defaults = defaults;
        foreach (var g in groups) AddParamGroup(g);
        if (_groups.Count == 0) throw new ArgumentException("An optimizer needs at least one parameter group.", nameof(groups));
    }

    /// <summary>The hyperparameters a new group starts from.</summary>
    protected ParamGroup Defaults { get; }

    /// <summary>The parameter groups, in order.</summary>
    public IReadOnlyList<ParamGroup> Groups => _groups;

    /// <summary>Adds a group (for example, layers just unfrozen). A parameter may belong to one group only.</summary>
    public void AddParamGroup(ParamGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        var existing = new HashSet<Parameter>(_groups.SelectMany(g => g.Parameters), ReferenceEqualityComparer.Instance);
        foreach (var p in group.Parameters)
            if (!existing.Add(p)) throw new ArgumentException($"A parameter of shape {ShapeText.Format(p.Shape)} appears in more than one parameter group.", nameof(group));
        group.FillDefaults(Defaults);
        Validate(group);
        _groups.Add(group);
    }

    /// <summary>Checks a group's hyperparameters and throws naming the bad one.</summary>
    protected virtual void Validate(ParamGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (group.Lr < 0 || double.IsNaN(group.Lr)) throw new ArgumentOutOfRangeException(nameof(group), $"Invalid learning rate {group.LearningRate}.");
        if (group.WeightDecay is < 0) throw new ArgumentOutOfRangeException(nameof(group), $"Invalid weight decay {group.WeightDecay}.");
    }

    /// <summary>Applies one update to every parameter that has a gradient.</summary>
    public void Step()
    {
        using var _ = GradRecorder.NoGrad();
        using var persistent = TensorScope.SuspendForEngine(); // state buffers outlive the step
        foreach (var group in _groups)
        {
            Validate(group);
            var parameters = group.Parameters;
            for (int i = 0; i < parameters.Count; i++)
            {
                var p = parameters[i];
                if (p.Grad is null || !p.RequiresGrad) continue;
                if (!_state.TryGetValue(p, out var state)) _state[p] = state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                Update(group, p, p.Grad, state);
            }
        }
    }

    /// <summary>Updates one parameter in place.</summary>
    protected abstract void Update(ParamGroup group, Parameter parameter, Tensor gradient, Dictionary<string, Tensor> state);

    /// <summary>
    /// Clears the gradient of every parameter: by dropping it (the default, as torch's set_to_none), so a parameter
    /// the next backward pass does not reach has no gradient and is not updated; or, with
    /// <paramref name="setToNone"/> false, by zeroing it in place, so the next backward pass accumulates into the same
    /// memory and a training loop allocates no gradients after its first step.
    /// </summary>
    public void ZeroGrad(bool setToNone = true)
    {
        foreach (var g in _groups)
        {
            var parameters = g.Parameters;
            for (int i = 0; i < parameters.Count; i++)
            {
                if (setToNone) parameters[i].Grad = null;
                else parameters[i].Grad?.Fill(0);
            }
        }
    }

    /// <summary>Forgets all per-parameter state (momentum, moments), as for a fresh optimizer.</summary>
    public void ClearState() => _state.Clear();

    /// <summary>Forgets the state of one group's parameters (for example, a group just unfrozen).</summary>
    public void ClearState(ParamGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        foreach (var p in group.Parameters) _state.Remove(p);
    }

    /// <summary>
    /// The optimizer's state: every group's hyperparameters ("group.{g}.lr", …) and every parameter's buffers
    /// ("state.{g}.{i}.{name}", with i the parameter's index within group g). Copies, not views.
    /// </summary>
    public StateDict StateDict()
    {
        var dict = new StateDict();
        for (int g = 0; g < _groups.Count; g++)
        {
            var group = _groups[g];
            foreach (var (key, value) in Hyperparameters(group))
                if (value is double v) dict.Add($"group.{g}.{key}", Tensor.Scalar(v, DType.Float64));
            for (int i = 0; i < group.Parameters.Count; i++)
                if (_state.TryGetValue(group.Parameters[i], out var state))
                    foreach (var (name, t) in state.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                        dict.Add($"state.{g}.{i}.{name}", Copy(t));
        }
        return dict;
    }

    /// <summary>Restores a state saved by <see cref="StateDict"/> from an optimizer over the same groups.</summary>
    public void LoadStateDict(StateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var restored = new Dictionary<Parameter, Dictionary<string, Tensor>>(ReferenceEqualityComparer.Instance);
        var hyper = new List<Action>();
        foreach (var (key, value) in state)
        {
            var parts = key.Split('.');
            if (parts.Length == 3 && parts[0] == "group")
            {
                var group = GroupAt(parts[1], key);
                double v = value.Item();
                hyper.Add(parts[2] switch
                {
                    "lr" => () => group.LearningRate = v,
                    "momentum" => () => group.Momentum = v,
                    "beta2" => () => group.Beta2 = v,
                    "weight_decay" => () => group.WeightDecay = v,
                    "eps" => () => group.Eps = v,
                    "dampening" => () => group.Dampening = v,
                    "nesterov" => () => group.Nesterov = v != 0,
                    _ => throw new StateDictMismatchException($"Optimizer state entry '{key}' names an unknown hyperparameter."),
                });
            }
            else if (parts.Length == 4 && parts[0] == "state")
            {
                var group = GroupAt(parts[1], key);
                if (!int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int i) || i >= group.Parameters.Count)
                    throw new StateDictMismatchException($"Optimizer state entry '{key}' names a parameter the group does not have ({group.Parameters.Count} parameters).");
                var p = group.Parameters[i];
                if (parts[3] != "step" && !value.Shape.SequenceEqual(p.Shape))
                    throw new StateDictMismatchException($"Optimizer state entry '{key}' has shape {ShapeText.Format(value.Shape)}; the parameter has {ShapeText.Format(p.Shape)}.");
                if (!restored.TryGetValue(p, out var s)) restored[p] = s = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                s[parts[3]] = Copy(value);
            }
            else
            {
                throw new StateDictMismatchException($"'{key}' is not an optimizer state entry.");
            }
        }
        foreach (var set in hyper) set();
        _state.Clear();
        foreach (var (p, s) in restored) _state[p] = s;
    }

    internal IReadOnlyDictionary<string, Tensor>? StateOf(Parameter p) => _state.TryGetValue(p, out var s) ? s : null;

    private ParamGroup GroupAt(string text, string key)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int g) || g >= _groups.Count)
            throw new StateDictMismatchException($"Optimizer state entry '{key}' names group {text}; this optimizer has {_groups.Count} groups.");
        return _groups[g];
    }

    private static IEnumerable<(string Key, double? Value)> Hyperparameters(ParamGroup g) =>
    [
        ("lr", g.LearningRate), ("momentum", g.Momentum), ("beta2", g.Beta2), ("weight_decay", g.WeightDecay),
        ("eps", g.Eps), ("dampening", g.Dampening), ("nesterov", g.Nesterov is null ? null : g.Nesterov.Value ? 1 : 0),
    ];

    private static Tensor Copy(Tensor t)
    {
        var c = Tensor.ZerosLike(t);
        c.CopyFrom(t);
        return c;
    }

    /// <summary>Wraps bare parameters in one group.</summary>
    protected static IEnumerable<ParamGroup> OneGroup(IEnumerable<Parameter> parameters) => [new ParamGroup(parameters)];
}
