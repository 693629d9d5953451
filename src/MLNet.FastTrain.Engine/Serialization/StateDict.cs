using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace MLNet.FastTrain.Engine.Serialization;

/// <summary>Named tensors in insertion order: a module's or an optimizer's state.</summary>
public sealed class StateDict : IReadOnlyDictionary<string, Tensor>
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Tensor> _map = new(StringComparer.Ordinal);

    /// <summary>Adds an entry; names must be unique.</summary>
    public void Add(string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        if (!_map.TryAdd(name, value)) throw new ArgumentException($"The state dict already has an entry '{name}'.", nameof(name));
        _order.Add(name);
    }

    /// <summary>A deep copy: the tensors get their own storage.</summary>
    public StateDict Clone()
    {
        using var _ = TensorScope.Suspend(); // a snapshot outlives any step scope
        var copy = new StateDict();
        foreach (var name in _order)
        {
            var t = Tensor.ZerosLike(_map[name]);
            t.CopyFrom(_map[name]);
            copy.Add(name, t);
        }
        return copy;
    }

    /// <inheritdoc />
    public Tensor this[string key] => _map.TryGetValue(key, out var t) ? t : throw new KeyNotFoundException($"The state dict has no entry '{key}'.");

    /// <inheritdoc />
    public IEnumerable<string> Keys => _order;

    /// <inheritdoc />
    public IEnumerable<Tensor> Values => _order.Select(k => _map[k]);

    /// <inheritdoc />
    public int Count => _order.Count;

    /// <inheritdoc />
    public bool ContainsKey(string key) => _map.ContainsKey(key);

    /// <inheritdoc />
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out Tensor value) => _map.TryGetValue(key, out value);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _order.Select(k => new KeyValuePair<string, Tensor>(k, _map[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A state dict does not fit a module: lists every missing, unexpected and mis-shaped entry.</summary>
public sealed class StateDictMismatchException : InvalidOperationException
{
    /// <summary>Creates the exception from the three lists.</summary>
    public StateDictMismatchException(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> misShaped)
        : base(Describe(missing, unexpected, misShaped))
    {
        Missing = missing;
        Unexpected = unexpected;
        MisShaped = misShaped;
    }

    /// <summary>Creates the exception.</summary>
    public StateDictMismatchException() : this([], [], []) { }

    /// <summary>Creates the exception.</summary>
    public StateDictMismatchException(string message) : base(message) { Missing = Unexpected = MisShaped = []; }

    /// <summary>Creates the exception.</summary>
    public StateDictMismatchException(string message, Exception inner) : base(message, inner) { Missing = Unexpected = MisShaped = []; }

    /// <summary>Names the module has and the state dict lacks.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>Names the state dict has and the module lacks.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>"name: expected [..], got [..]" for entries whose shapes differ.</summary>
    public IReadOnlyList<string> MisShaped { get; }

    private static string Describe(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> misShaped)
    {
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add("missing: " + string.Join(", ", missing));
        if (unexpected.Count > 0) parts.Add("unexpected: " + string.Join(", ", unexpected));
        if (misShaped.Count > 0) parts.Add("mis-shaped: " + string.Join("; ", misShaped));
        return "The state dict does not fit the module (" + string.Join(" | ", parts) + ").";
    }
}
