using System.Collections.Concurrent;
using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>One mini-batch: images [B, C, H, W] (normalised float32) and their labels.</summary>
public sealed record Batch(Tensor Images, int[] Labels)
{
    /// <summary>
    /// True when <see cref="Images"/> is the only user of its memory, so that a consumer that reads nothing of the batch
    /// after its step may hand that memory back for a later batch (<see cref="TensorScope.Adopt"/> in the step's scope,
    /// as the learner does). A batch of a loader is; a slice of precomputed activations is not.
    /// </summary>
    public bool Recyclable { get; init; }

    /// <summary>
    /// Hands a recyclable batch's images to the current scope (<see cref="TensorScope.Adopt"/>): when the scope ends
    /// they are released and their memory serves a later batch. Does nothing for a batch that is not recyclable.
    /// </summary>
    public void AdoptIntoScope()
    {
        if (Recyclable) TensorScope.Adopt(Images);
    }
}

/// <summary>
/// Serves a dataset in mini-batches: pixels scaled to [0, 1] and normalised per channel, a seeded shuffle per epoch,
/// an optional batch transform (augmentation), and the next batch prepared on a background thread while the
/// current one trains.
/// </summary>
public sealed class DataLoader : IBatchSource
{
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <summary>Creates a loader.</summary>
    /// <param name="dataset">The items.</param>
    /// <param name="batchSize">Items per batch.</param>
    /// <param name="shuffle">Shuffle every epoch (training) or keep the order (validation).</param>
    /// <param name="seed">Seed of the shuffle; epoch e uses seed + e, so any epoch can be replayed.</param>
    /// <param name="dropLast">Drop a final, smaller batch.</param>
    /// <param name="normalization">Per-channel mean and std of [0, 1] pixels; default: the dataset's own.</param>
    public DataLoader(ImageDataset dataset, int batchSize, bool shuffle, ulong seed = 0, bool dropLast = false, (float[] Mean, float[] Std)? normalization = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        Dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        (_mean, _std) = normalization ?? dataset.ChannelStatistics();
        if (_mean.Length != dataset.Channels || _std.Length != dataset.Channels)
            throw new ArgumentException($"Normalisation has {_mean.Length} means and {_std.Length} stds for {dataset.Channels} channels.", nameof(normalization));
    }

    /// <summary>The dataset.</summary>
    public ImageDataset Dataset { get; }

    /// <summary>Items per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>The shuffle seed.</summary>
    public ulong Seed { get; }

    /// <summary>Whether a final short batch is dropped.</summary>
    public bool DropLast { get; }

    /// <summary>The per-channel normalisation (mean, std) applied to [0, 1] pixels.</summary>
    public (float[] Mean, float[] Std) Normalization => (_mean, _std);

    /// <summary>A transform applied to each batch's images (for example augmentation), or null.</summary>
    public Transforms.BatchTransform? BatchTransform { get; set; }

    /// <summary>
    /// The (height, width) batches are served at; null (default) keeps the dataset's size. Progressive resizing
    /// changes it between epochs; the same dataset is resized on the fly, never reloaded.
    /// </summary>
    public (int Height, int Width)? ImageSize { get; set; }

    /// <summary>Batches per epoch.</summary>
    public int BatchCount => DropLast ? Dataset.Count / BatchSize : (Dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>A loader over the same data and settings with another batch size.</summary>
    public DataLoader WithBatchSize(int batchSize) =>
        new(Dataset, batchSize, Shuffle, Seed, DropLast, (_mean, _std)) { BatchTransform = BatchTransform, ImageSize = ImageSize };

    /// <summary>The item order of an epoch.</summary>
    public int[] Order(int epoch) => Shuffling.Order(Dataset.Count, Shuffle, Seed, epoch);

    /// <summary>The batches of one epoch, each built on a background thread one batch ahead.</summary>
    /// <param name="epoch">The epoch (selects the shuffle).</param>
    /// <param name="skipBatches">Batches to skip at the start (resuming mid-epoch).</param>
    /// <param name="cancellationToken">Stops the epoch.</param>
    public IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0, CancellationToken cancellationToken = default)
    {
        var order = Order(epoch);
        int batches = BatchCount;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var queue = new BlockingCollection<Batch>(boundedCapacity: 2);
        Exception? failure = null;
        var producer = Task.Run(() =>
        {
            try
            {
                var augment = new Generator(Seed * 7919 + (ulong)epoch);
                for (int b = 0; b < batches && !stop.IsCancellationRequested; b++)
                {
                    var batch = Build(order, b, augment);   // built even when skipped, so augmentation replays exactly
                    if (b >= skipBatches) queue.Add(batch, stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
                // the consumer stopped early
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException)
            {
                failure = e;
            }
            finally
            {
                queue.CompleteAdding();
            }
        }, CancellationToken.None);
        try
        {
            foreach (var batch in queue.GetConsumingEnumerable(cancellationToken)) yield return batch;
        }
        finally
        {
            stop.Cancel();
            producer.Wait(CancellationToken.None);
        }
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
    }

    private Batch Build(int[] order, int b, Generator augment)
    {
        int start = b * BatchSize, count = Math.Min(BatchSize, order.Length - start);
        int c = Dataset.Channels;
        var (h, w) = ImageSize ?? (Dataset.Height, Dataset.Width);
        int plane = h * w;
        bool resize = h != Dataset.Height || w != Dataset.Width;
        // Built in a scope of the producer thread: the augmentations' intermediate images go back to the pool at once,
        // and the batch's own memory comes from it (returned by the step that adopts the batch).
        using var scope = TensorScope.Begin();
        var images = Tensor.Zeros(count, c, h, w);
        var dst = images.AsSpan();
        var labels = new int[count];
        var resized = resize ? new float[c * plane] : null;
        var scratch = Dataset.IsOnDisk ? new byte[Dataset.ImageSize] : [];
        for (int i = 0; i < count; i++)
        {
            int item = order[start + i];
            labels[i] = Dataset.LabelOf(item);
            var src = Dataset.Pixels(item, scratch);
            if (resized is not null) Transforms.Resize.Planes(src, c, Dataset.Height, Dataset.Width, resized, h, w);
            for (int ch = 0; ch < c; ch++)
            {
                float scale = 1f / (255f * _std[ch]), shift = -_mean[ch] / _std[ch];
                var d = dst.Slice((i * c + ch) * plane, plane);
                if (resized is not null)
                {
                    var r = resized.AsSpan(ch * plane, plane);
                    for (int p = 0; p < plane; p++) d[p] = r[p] * scale + shift;
                }
                else
                {
                    var s = src.Slice(ch * plane, plane);
                    for (int p = 0; p < plane; p++) d[p] = s[p] * scale + shift;
                }
            }
        }
        if (BatchTransform is not null) images = BatchTransform(images, augment);
        return new Batch(scope.Disown(images), labels) { Recyclable = true };
    }
}
