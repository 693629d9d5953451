using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>
/// Batches cut from tensors held in memory (for example precomputed activations), with the same seeded shuffle as
/// <see cref="DataLoader"/>.
/// </summary>
public sealed class TensorBatchSource : IBatchSource
{
    private readonly Tensor _items;
    private readonly int[] _labels;

    /// <summary>Creates the source from items [N, …] and their labels.</summary>
    public TensorBatchSource(Tensor items, int[] labels, int batchSize, bool shuffle, ulong seed = 0, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        if (items.Rank < 1 || items.Size(0) != labels.Length)
            throw new ArgumentException($"{labels.Length} labels for items of shape {string.Join("×", items.ShapeArray())}.", nameof(labels));
        _items = items;
        _labels = labels;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
    }

    /// <inheritdoc />
    public int BatchSize { get; }

    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>The shuffle seed.</summary>
    public ulong Seed { get; }

    /// <summary>Whether a final short batch is dropped.</summary>
    public bool DropLast { get; }

    /// <summary>Number of items.</summary>
    public int Count => _labels.Length;

    /// <summary>The items [N, …].</summary>
    public Tensor Items => _items;

    /// <inheritdoc />
    public int BatchCount => DropLast ? Count / BatchSize : (Count + BatchSize - 1) / BatchSize;

    /// <inheritdoc />
    public IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0, CancellationToken cancellationToken = default)
    {
        var order = Shuffling.Order(Count, Shuffle, Seed, epoch);
        int itemSize = _items.Length / Math.Max(1, Count);
        var shape = _items.ShapeArray();
        for (int b = skipBatches; b < BatchCount; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int start = b * BatchSize, count = Math.Min(BatchSize, Count - start);
            shape[0] = count;
            var batch = Tensor.Zeros(shape, _items.DType);
            var labels = new int[count];
            for (int i = 0; i < count; i++)
            {
                int item = order[start + i];
                batch.Narrow(i, 1).CopyFrom(_items.Narrow(item, 1));
                labels[i] = _labels[item];
            }
            yield return new Batch(batch, labels);
        }
    }
}
