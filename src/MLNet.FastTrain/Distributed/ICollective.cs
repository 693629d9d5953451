namespace MLNet.FastTrain.Distributed;

/// <summary>
/// The collective operations data-parallel training needs (docs/design.md §11): every rank calls each operation in
/// the same order. Implemented over MPI by the MLNet.FastTrain.Mpi package; <see cref="SingleProcess"/> is the
/// collective of one.
/// </summary>
public interface ICollective
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> − 1.</summary>
    int Rank { get; }

    /// <summary>The number of processes.</summary>
    int Size { get; }

    /// <summary>Replaces <paramref name="values"/> on every rank with their element-wise sum over all ranks.</summary>
    void AllReduceSum(Span<float> values);

    /// <summary>Replaces <paramref name="values"/> on every rank with rank <paramref name="root"/>'s.</summary>
    void Broadcast(Span<byte> values, int root);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();
}

/// <summary>The collective of one process: every operation leaves the values as they are.</summary>
public sealed class SingleProcess : ICollective
{
    /// <summary>The one instance.</summary>
    public static SingleProcess Instance { get; } = new();

    private SingleProcess()
    {
    }

    /// <inheritdoc />
    public int Rank => 0;

    /// <inheritdoc />
    public int Size => 1;

    /// <inheritdoc />
    public void AllReduceSum(Span<float> values)
    {
    }

    /// <inheritdoc />
    public void Broadcast(Span<byte> values, int root) => ArgumentOutOfRangeException.ThrowIfNotEqual(root, 0);

    /// <inheritdoc />
    public void Barrier()
    {
    }
}

/// <summary>
/// The agreements data-parallel training builds from the collective's primitives: every rank calls each in the same
/// order, and on a collective of one each returns this process's own value without communicating.
/// </summary>
public static class CollectiveAgreements
{
    /// <summary>True on every rank when <paramref name="mine"/> is true on any rank (a stop one rank asks for ends every rank's fit at the same step).</summary>
    public static bool AnyRank(this ICollective collective, bool mine)
    {
        ArgumentNullException.ThrowIfNull(collective);
        if (collective.Size == 1) return mine;
        Span<float> flag = [mine ? 1 : 0];
        collective.AllReduceSum(flag);
        return flag[0] > 0;
    }

    /// <summary>The largest of the ranks' <paramref name="mine"/>, on every rank (exchanged as float: integers up to 2^24 exactly).</summary>
    public static double Max(this ICollective collective, double mine)
    {
        ArgumentNullException.ThrowIfNull(collective);
        if (collective.Size == 1) return mine;
        // One slot a rank: the sum of the slots leaves every rank's value in its own.
        var slots = new float[collective.Size];
        slots[collective.Rank] = (float)mine;
        collective.AllReduceSum(slots);
        return slots.Max();
    }

    /// <summary>Rank <paramref name="root"/>'s <paramref name="value"/> on every rank.</summary>
    public static double Broadcast(this ICollective collective, double value, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(collective);
        if (collective.Size == 1) return value;
        Span<double> cell = [value];
        collective.Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cell), root);
        return cell[0];
    }

    /// <summary>
    /// Rank <paramref name="root"/>'s bytes on every rank, whatever their length (the length goes first); the other
    /// ranks' <paramref name="mine"/> is ignored and may be null.
    /// </summary>
    public static byte[] BroadcastArray(this ICollective collective, byte[]? mine, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(collective);
        bool isRoot = collective.Rank == root;
        if (isRoot) ArgumentNullException.ThrowIfNull(mine);
        if (collective.Size == 1) return mine!;
        long length = (long)collective.Broadcast(isRoot ? mine!.Length : 0, root);
        var values = isRoot ? mine! : new byte[length];
        collective.Broadcast(values, root);
        return values;
    }

    /// <summary>
    /// Makes every rank hold rank <paramref name="root"/>'s float values of <paramref name="state"/> (its tensors in
    /// their order; the dictionaries must have the same keys and shapes on every rank).
    /// </summary>
    public static void Broadcast(this ICollective collective, Engine.Serialization.StateDict state, int root = 0) =>
        Exchange(collective, state, state.Keys, sum => collective.Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(sum), root));

    /// <summary>Replaces the named float tensors of <paramref name="state"/> on every rank with their mean over the ranks.</summary>
    public static void Average(this ICollective collective, Engine.Serialization.StateDict state, IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(collective);
        float scale = 1f / collective.Size;
        Exchange(collective, state, names, values =>
        {
            collective.AllReduceSum(values);
            System.Numerics.Tensors.TensorPrimitives.Multiply(values, scale, values);
        });
    }

    // Packs the named tensors into one buffer, lets the collective act on it, and unpacks the result into new tensors.
    private static void Exchange(ICollective collective, Engine.Serialization.StateDict state, IEnumerable<string> names, SpanAction exchange)
    {
        ArgumentNullException.ThrowIfNull(collective);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(names);
        if (collective.Size == 1) return;
        var keys = names.ToList();
        foreach (var k in keys)
            if (state[k].DType != Engine.DType.Float32) throw new ArgumentException($"'{k}' is {state[k].DType}; only float32 tensors are exchanged.", nameof(names));
        var packed = new float[keys.Sum(k => (long)state[k].Length)];
        int at = 0;
        foreach (var k in keys)
        {
            state[k].AsSpan().CopyTo(packed.AsSpan(at));
            at += state[k].Length;
        }
        exchange(packed);
        at = 0;
        foreach (var k in keys)
        {
            packed.AsSpan(at, state[k].Length).CopyTo(state[k].AsSpan());
            at += state[k].Length;
        }
    }

    private delegate void SpanAction(Span<float> values);
}

/// <summary>
/// A run stopped because a stop was requested: its cancellation token was cancelled on this process or, in
/// data-parallel training, on another rank. The ranks agree on a stop before acting on it, so every rank throws this at
/// the same point and none is left waiting for the others in a collective.
/// </summary>
public sealed class StopRequestedException(string message, CancellationToken token) : OperationCanceledException(message, token);
