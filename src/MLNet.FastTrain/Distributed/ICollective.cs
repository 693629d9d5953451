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
