namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>What a training loop needs from its data: batches of one epoch, and how many there are.</summary>
public interface IBatchSource
{
    /// <summary>Items per batch.</summary>
    int BatchSize { get; }

    /// <summary>Batches per epoch.</summary>
    int BatchCount { get; }

    /// <summary>The batches of one epoch (the epoch number selects the shuffle), skipping the first <paramref name="skipBatches"/>.</summary>
    IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0, CancellationToken cancellationToken = default);
}

/// <summary>The item order of an epoch, shared by every batch source so that equal seeds give equal orders.</summary>
public static class Shuffling
{
    /// <summary>0…count−1, shuffled with seed + epoch when <paramref name="shuffle"/>.</summary>
    public static int[] Order(int count, bool shuffle, ulong seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        if (shuffle) new Engine.Generator(seed + (ulong)epoch).Shuffle<int>(order);
        return order;
    }
}
