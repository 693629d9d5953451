namespace MLNet.FastTrain.Engine;

/// <summary>
/// A region (typically one training step) whose tensors borrow their memory from a pool and give it back when
/// the scope ends, so a steady-state step does not make the garbage collector churn through large arrays.
/// </summary>
/// <remarks>
/// Every tensor created inside the scope (results, gradients of intermediate values, views of them) is released
/// when the scope is disposed: using it afterwards throws <see cref="ObjectDisposedException"/>, so a mistake is
/// loud rather than silent. What must outlive the step — parameter gradients, optimizer state — is created under
/// <see cref="Suspend"/>, which the engine does itself. Scopes are per thread and may nest; an inner scope returns
/// only what it lent. A scope begun with <c>reuseTensorObjects</c> also hands its tensor objects to the next such
/// scope, which a training loop that keeps no tensor across steps can use to allocate nothing per step.
/// <code>
/// using (TensorScope.Begin())
/// {
///     var loss = Functional.CrossEntropy(net.Forward(x), y);
///     loss.Backward();
///     optimizer.Step();
///     total += loss.Item();
/// }
/// </code>
/// </remarks>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? t_current;

    private TensorScope? _parent;
    private readonly bool _suspended;
    private readonly bool _transient;
    private readonly bool _reuseTensorObjects;
    private readonly bool _engineOwned;
    private readonly HashSet<Array> _lent;
    private readonly List<Tensor> _tensors;
    private bool _disposed;
    private long _lentBytes;

    /// <summary>Emptied bookkeeping of ended scopes, reused so a step's scope allocates no growing collections.</summary>
    [ThreadStatic] private static Stack<(HashSet<Array> Lent, List<Tensor> Tensors)>? t_spare;

    /// <summary>Tensor objects released by scopes that reuse them, waiting for the next such scope on this thread.</summary>
    [ThreadStatic] private static Stack<Tensor>? t_reusable;

    /// <summary>At most this many objects wait for reuse per thread (a step makes a few hundred).</summary>
    private const int MaxReusable = 1 << 14;

    /// <summary>Ended suspensions the engine opened for itself, reused by its next one on this thread.</summary>
    [ThreadStatic] private static Stack<TensorScope>? t_spareSuspensions;

    private TensorScope(TensorScope? parent, bool suspended, bool transient = false, bool reuseTensorObjects = false, bool engineOwned = false)
    {
        _parent = parent;
        _suspended = suspended;
        _transient = transient;
        _reuseTensorObjects = reuseTensorObjects;
        _engineOwned = engineOwned;
        if (t_spare is { Count: > 0 } spare) (_lent, _tensors) = spare.Pop();
        else (_lent, _tensors) = (new HashSet<Array>(ReferenceEqualityComparer.Instance), []);
    }

    /// <summary>Starts a scope on this thread.</summary>
    public static TensorScope Begin() => t_current = new TensorScope(t_current, suspended: false);

    /// <summary>
    /// Starts a scope on this thread; with <paramref name="reuseTensorObjects"/> the tensor objects it releases, not
    /// only their memory, are handed out again by the next such scope, so a steady-state training step allocates
    /// nothing at all.
    /// </summary>
    /// <remarks>
    /// The price: a reference kept past the scope's end does not throw <see cref="ObjectDisposedException"/> once
    /// its object has been reused, it silently reads a later step's tensor. Use it for loops that take only values
    /// (<see cref="Tensor.Item"/>, <see cref="Tensor.ToArray"/>) out of the step, as a training loop does.
    /// </remarks>
    public static TensorScope Begin(bool reuseTensorObjects) =>
        t_current = new TensorScope(t_current, suspended: false, reuseTensorObjects: reuseTensorObjects);

    /// <summary>
    /// Starts a region inside a scope whose tensors are ordinary, garbage-collected ones that outlive the scope
    /// (for state such as gradients of parameters and optimizer buffers).
    /// </summary>
    public static TensorScope Suspend() => t_current = new TensorScope(t_current, suspended: true);

    /// <summary>
    /// <see cref="Suspend"/> for the engine's own short suspensions (an optimizer step): the scope object is reused
    /// once disposed, so nothing may hold it afterwards.
    /// </summary>
    internal static TensorScope SuspendForEngine()
    {
        if (t_spareSuspensions is not { Count: > 0 } spare) return t_current = new TensorScope(t_current, suspended: true, engineOwned: true);
        var scope = spare.Pop();
        scope._parent = t_current;
        scope._disposed = false;
        return t_current = scope;
    }

    /// <summary>Bytes held by the pool for reuse.</summary>
    public static long PooledBytes => TensorPool.PooledBytes;

    /// <summary>
    /// Gives every array the pool keeps for reuse back to the garbage collector: for when the sizes a loop asks for
    /// change for good (another batch size or image size), so that the old sizes' memory does not wait to be aged out.
    /// </summary>
    public static void TrimPool() => TensorPool.Clear();

    /// <summary>
    /// <see cref="TrimPool"/> when the managed heap has a hard limit (a memory budget), where the memory one phase of
    /// training keeps for its next turn (training's for the next epoch, validation's for the next validation) would
    /// crowd out the other's; without a limit the pool keeps both, which spares the collector.
    /// </summary>
    public static void TrimPoolUnderHeapLimit()
    {
        if (AppContext.GetData("GCHeapHardLimit") is not null) TensorPool.Clear();
    }

    /// <summary>
    /// Bytes lent to tensors of this scope so far. Nothing is returned before the scope ends, so at the end of a step
    /// this is the step's peak tensor memory (activations kept for backward, gradients of intermediates, outputs).
    /// </summary>
    public long LentBytes => _lentBytes;

    internal static Array Allocate(int length, DType dtype, bool clear)
    {
        var scope = t_current;
        if (scope is null || scope._suspended)
            return dtype == DType.Float32 ? new float[length] : new double[length];
        var array = TensorPool.Rent(length, dtype);
        if (clear) Array.Clear(array);
        scope._lent.Add(array);
        scope._lentBytes += (long)length * (dtype == DType.Float32 ? 4 : 8);
        return array;
    }

    /// <summary>A released tensor object to reinitialise, when the current scope reuses them and one is waiting.</summary>
    internal static Tensor? TakeReusable() =>
        t_current is { _reuseTensorObjects: true } && t_reusable is { Count: > 0 } reusable ? reusable.Pop() : null;

    internal static void Track(Tensor tensor, Array storage)
    {
        for (var scope = t_current; scope is not null; scope = scope._parent)
        {
            if (scope._suspended) continue;
            if (scope._lent.Contains(storage))
            {
                scope._tensors.Add(tensor);
                return;
            }
        }
    }

    /// <summary>
    /// A short scope inside another (one layer of an evaluation pass): its end returns memory to the pool but, unlike
    /// a step's, does not count as a generation for dropping idle pool buckets.
    /// </summary>
    internal static TensorScope BeginTransient() => t_current = new TensorScope(t_current, suspended: false, transient: true);

    /// <summary>The scope tensors are created in on this thread, unless there is none or it is suspended.</summary>
    internal static TensorScope? Active => t_current is { _suspended: false } scope ? scope : null;

    /// <summary>
    /// Hands the memory of <paramref name="tensor"/> (and of the tensors sharing it) to the enclosing scope, so it
    /// outlives this one while everything else this scope lent goes back at its end.
    /// </summary>
    internal void Keep(Tensor tensor)
    {
        var storage = tensor.Storage;
        if (_parent is null || _parent._suspended || !_lent.Remove(storage)) return;
        long bytes = Bytes(storage);
        _lentBytes -= bytes;
        _parent._lent.Add(storage);
        _parent._lentBytes += bytes;
        for (int i = _tensors.Count - 1; i >= 0; i--)
        {
            if (_tensors[i].IsReleased || !ReferenceEquals(_tensors[i].Storage, storage)) continue;
            _parent._tensors.Add(_tensors[i]);
            _tensors.RemoveAt(i);
        }
    }

    /// <summary>
    /// Takes <paramref name="tensor"/> out of this scope: its memory is not given back when the scope ends (the tensors
    /// that share it, views made along the way, are still released). From then on it is an ordinary garbage-collected
    /// tensor, unless a later scope, perhaps on another thread, takes it over with <see cref="Adopt"/>. A tensor that
    /// is a part of a larger array, or whose memory this scope did not lend, is copied into memory of its own first.
    /// </summary>
    /// <returns>The tensor that now owns its memory outright (<paramref name="tensor"/> itself, or its copy).</returns>
    public Tensor Disown(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var storage = tensor.Storage;
        if (!OwnsWholeStorage(tensor) || !_lent.Contains(storage))
        {
            using (Suspend()) return tensor.Clone();
        }
        _lent.Remove(storage);
        _lentBytes -= Bytes(storage);
        _tensors.Remove(tensor);
        return tensor;
    }

    /// <summary>
    /// Makes the current scope responsible for <paramref name="tensor"/>: when it ends, the tensor is released and its
    /// memory goes to the pool for the next tensor of that size. For a tensor that is the only user of its memory and
    /// that nothing reads after the scope (a loader's batch, once its step is done); without a current scope nothing
    /// changes.
    /// </summary>
    public static void Adopt(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var storage = tensor.Storage;
        if (!OwnsWholeStorage(tensor))
            throw new ArgumentException($"Only a tensor that owns its whole memory can be adopted; this one (shape {ShapeText.Format(tensor.ShapeArray())}) is a view of a larger array.", nameof(tensor));
        if (Active is not { } scope) return;
        for (var s = scope; s is not null; s = s._parent)
            if (s._lent.Contains(storage)) return;
        scope._lent.Add(storage);
        scope._lentBytes += Bytes(storage);
        scope._tensors.Add(tensor);
    }

    private static bool OwnsWholeStorage(Tensor tensor) => tensor.Offset == 0 && tensor.Length == tensor.Storage.Length;

    private static long Bytes(Array storage) => (long)storage.Length * (storage is float[] ? 4 : 8);

    /// <summary>
    /// Returns the memory of <paramref name="tensor"/> to the pool now, releasing every tensor of this scope that
    /// shares it; for a value the caller knows is dead (an evaluation pass's intermediate). Memory this scope did
    /// not lend is left alone.
    /// </summary>
    internal void ReleaseNow(Tensor tensor)
    {
        var storage = tensor.Storage;
        if (!_lent.Remove(storage)) return;
        foreach (var t in _tensors)
            if (!t.IsReleased && ReferenceEquals(t.Storage, storage)) t.Release();
        TensorPool.Return(storage);
    }

    /// <summary>Releases every tensor the scope lent memory to and returns the memory to the pool.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (!ReferenceEquals(t_current, this))
            throw new InvalidOperationException("Tensor scopes must be disposed in the reverse order they were begun, on the thread that began them.");
        _disposed = true;
        t_current = _parent;
        foreach (var t in _tensors) t.Release();
        if (_reuseTensorObjects)
        {
            var reusable = t_reusable ??= new();
            foreach (var t in _tensors)
                if (t.GetType() == typeof(Tensor) && reusable.Count < MaxReusable) reusable.Push(t);
        }
        foreach (var array in _lent) TensorPool.Return(array);
        if (!_suspended && !_transient) TensorPool.EndGeneration();
        _tensors.Clear();
        _lent.Clear();
        if (_engineOwned)
        {
            _parent = null;
            (t_spareSuspensions ??= new()).Push(this);
            return;
        }
        var spare = t_spare ??= new();
        if (spare.Count < 8) spare.Push((_lent, _tensors));
    }
}
