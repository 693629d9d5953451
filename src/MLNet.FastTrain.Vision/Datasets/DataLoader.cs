using System.Collections.Concurrent;
using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>
/// One mini-batch: images [B, C, H, W] (normalised float32) and their labels. A batch handed over as
/// <see cref="Pixels"/> (to an engine that prepares batches on its device) makes its host <see cref="Images"/> only
/// when they are first read.
/// </summary>
public sealed class Batch
{
    private Tensor? _images;

    /// <summary>A batch of host images.</summary>
    public Batch(Tensor images, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        _images = images;
        Labels = labels;
    }

    /// <summary>A batch of uint8 pixels, normalised and augmented by whoever reads it.</summary>
    public Batch(PixelBatch pixels, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        if (pixels.Count != labels.Length) throw new ArgumentException($"{pixels.Count} images but {labels.Length} labels.", nameof(labels));
        Pixels = pixels;
        Labels = labels;
    }

    /// <summary>The normalised (and augmented) images on the host; for a batch of pixels, made on first read.</summary>
    public Tensor Images => _images ??= Pixels!.ToImages();

    /// <summary>The labels.</summary>
    public int[] Labels { get; }

    /// <summary>The uint8 pixels with their normalisation and augmentation, when the loader handed the batch over so; else null.</summary>
    public PixelBatch? Pixels { get; }

    /// <summary>Whether <see cref="Images"/> exist on the host (always, unless the batch is pixels nobody has read as images).</summary>
    public bool HasImages => _images is not null;

    /// <summary>
    /// True when <see cref="Images"/> is the only user of its memory, so that a consumer that reads nothing of the batch
    /// after its step may hand that memory back for a later batch (<see cref="TensorScope.Adopt"/> in the step's scope,
    /// as the learner does). A batch of a loader is; a slice of precomputed activations is not.
    /// </summary>
    public bool Recyclable { get; init; }

    /// <summary>
    /// Hands a recyclable batch's images to the current scope (<see cref="TensorScope.Adopt"/>): when the scope ends
    /// they are released and their memory serves a later batch. Does nothing for a batch that is not recyclable, or
    /// whose images were never made.
    /// </summary>
    public void AdoptIntoScope()
    {
        if (Recyclable && _images is not null) TensorScope.Adopt(_images);
    }
}

/// <summary>
/// A batch as uint8 pixels [Count, Channels, Height, Width], with the per-channel normalisation of [0, 1] values and
/// the augmentation drawn for it (null: none), for an engine that prepares batches on its device
/// (docs/design.md §9, "Batches on the device").
/// </summary>
public sealed class PixelBatch
{
    /// <summary>Wraps pixels; the arrays are used as they are, not copied.</summary>
    public PixelBatch(byte[] pixels, int count, int channels, int height, int width, float[] mean, float[] std, Transforms.AugmentationPlan? augmentation)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (pixels.Length != (long)count * channels * height * width)
            throw new ArgumentException($"{pixels.Length} bytes are not {count}×{channels}×{height}×{width} pixels.", nameof(pixels));
        if (mean.Length != channels || std.Length != channels)
            throw new ArgumentException($"Normalisation has {mean.Length} means and {std.Length} stds for {channels} channels.", nameof(mean));
        if (augmentation is not null && (augmentation.Count, augmentation.Channels, augmentation.Height, augmentation.Width) != (count, channels, height, width))
            throw new ArgumentException($"The augmentation was drawn for {augmentation.Count}×{augmentation.Channels}×{augmentation.Height}×{augmentation.Width} images, not {count}×{channels}×{height}×{width}.", nameof(augmentation));
        (Pixels, Count, Channels, Height, Width, Mean, Std, Augmentation) = (pixels, count, channels, height, width, mean, std, augmentation);
    }

    /// <summary>The pixels, planar per image: [Count, Channels, Height, Width].</summary>
    public byte[] Pixels { get; }

    /// <summary>Images.</summary>
    public int Count { get; }

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <summary>Per-channel mean of [0, 1] pixels.</summary>
    public float[] Mean { get; }

    /// <summary>Per-channel standard deviation of [0, 1] pixels.</summary>
    public float[] Std { get; }

    /// <summary>The augmentation's random choices for this batch, or null.</summary>
    public Transforms.AugmentationPlan? Augmentation { get; }

    /// <summary>The host images: normalised, then augmented with the managed kernels.</summary>
    public Tensor ToImages()
    {
        var images = Tensor.Zeros(Count, Channels, Height, Width);
        int plane = Height * Width;
        var dst = images.AsSpan();
        for (int i = 0; i < Count; i++)
            for (int c = 0; c < Channels; c++)
            {
                int offset = (i * Channels + c) * plane;
                DataLoader.Normalize(Pixels.AsSpan(offset, plane), dst.Slice(offset, plane), Mean[c], Std[c]);
            }
        return Augmentation is null ? images : Augmentation.Apply(images);
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
    /// Hand batches over as uint8 <see cref="Batch.Pixels"/> with their normalisation and drawn augmentation instead
    /// of host float images, for an engine that prepares batches on its device; the learner sets it from
    /// <c>TrainingEngine.PreparesBatches</c>. A <see cref="BatchTransform"/> that is a function rather than an
    /// <see cref="Transforms.Augmentation"/> keeps batches on the host. Resized batches are rounded to whole levels.
    /// </summary>
    public bool HandOverPixels { get; set; }

    /// <summary>
    /// The (height, width) batches are served at; null (default) keeps the dataset's size. Progressive resizing
    /// changes it between epochs; the same dataset is resized on the fly, never reloaded.
    /// </summary>
    public (int Height, int Width)? ImageSize { get; set; }

    /// <summary>
    /// This process's part of the data in data-parallel training: rank r of n reads items r, r + n, r + 2n, … of
    /// each epoch's order (the same order on every rank), Dataset.Count / n of them, so every rank has as many batches.
    /// Default (0, 1): all of it.
    /// </summary>
    public (int Rank, int Ranks) Shard
    {
        get => _shard;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value.Ranks, 1, nameof(Shard));
            if (value.Rank < 0 || value.Rank >= value.Ranks) throw new ArgumentOutOfRangeException(nameof(Shard), $"Rank {value.Rank} is not one of {value.Ranks} ranks.");
            if (Dataset.Count / value.Ranks == 0) throw new ArgumentException($"{Dataset.Count} items cannot be shared by {value.Ranks} ranks.", nameof(Shard));
            _shard = value;
        }
    }

    private (int Rank, int Ranks) _shard = (0, 1);

    private int ItemsPerEpoch => _shard.Ranks == 1 ? Dataset.Count : Dataset.Count / _shard.Ranks;

    /// <summary>Batches per epoch (of this rank's shard).</summary>
    public int BatchCount => DropLast ? ItemsPerEpoch / BatchSize : (ItemsPerEpoch + BatchSize - 1) / BatchSize;

    /// <summary>A loader over the same data and settings with another batch size.</summary>
    public DataLoader WithBatchSize(int batchSize)
    {
        var copy = Copy(Dataset, batchSize);
        copy.Shard = Shard;
        return copy;
    }

    /// <summary>
    /// A loader over other items (a subset, say) with this one's batch size, order, normalisation, transform, image
    /// size and hand-over; the shard is not carried over (it depends on how many items there are).
    /// </summary>
    public DataLoader Over(ImageDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Channels != Dataset.Channels)
            throw new ArgumentException($"The loader normalises {Dataset.Channels} channels; the new items have {dataset.Channels}.", nameof(dataset));
        return Copy(dataset, BatchSize);
    }

    // A loader with this one's settings (all but the shard) over the given items and batch size.
    private DataLoader Copy(ImageDataset dataset, int batchSize) =>
        new(dataset, batchSize, Shuffle, Seed, DropLast, (_mean, _std)) { BatchTransform = BatchTransform, ImageSize = ImageSize, HandOverPixels = HandOverPixels };

    /// <summary>The item order of an epoch (of this rank's shard).</summary>
    public int[] Order(int epoch)
    {
        var order = Shuffling.Order(Dataset.Count, Shuffle, Seed, epoch);
        if (_shard.Ranks == 1) return order;
        var mine = new int[ItemsPerEpoch];
        for (int i = 0; i < mine.Length; i++) mine[i] = order[_shard.Rank + i * _shard.Ranks];
        return mine;
    }

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
                // Each rank of a sharded loader draws its own augmentation (rank 0 the unsharded loader's).
                var augment = new Generator((Seed * 7919 + (ulong)epoch) ^ ((ulong)_shard.Rank * 0x9E3779B97F4A7C15UL));
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
        if (HandOverPixels && BatchTransform is null or Transforms.Augmentation) return BuildPixels(order, b, augment);
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
                var d = dst.Slice((i * c + ch) * plane, plane);
                if (resized is not null) Normalize(resized.AsSpan(ch * plane, plane), d, _mean[ch], _std[ch]);
                else Normalize(src.Slice(ch * plane, plane), d, _mean[ch], _std[ch]);
            }
        }
        if (BatchTransform is not null) images = BatchTransform.Apply(images, augment);
        return new Batch(scope.Disown(images), labels) { Recyclable = true };
    }

    // The same items and the same random draws as Build, left as pixels for the engine.
    private Batch BuildPixels(int[] order, int b, Generator augment)
    {
        int start = b * BatchSize, count = Math.Min(BatchSize, order.Length - start);
        int c = Dataset.Channels;
        var (h, w) = ImageSize ?? (Dataset.Height, Dataset.Width);
        int size = c * h * w;
        bool resize = h != Dataset.Height || w != Dataset.Width;
        var pixels = GC.AllocateUninitializedArray<byte>(count * size);
        var labels = new int[count];
        var resized = resize ? new float[size] : null;
        var scratch = Dataset.IsOnDisk ? new byte[Dataset.ImageSize] : [];
        for (int i = 0; i < count; i++)
        {
            int item = order[start + i];
            labels[i] = Dataset.LabelOf(item);
            var src = Dataset.Pixels(item, scratch);
            var dst = pixels.AsSpan(i * size, size);
            if (resized is null)
            {
                src.CopyTo(dst);
                continue;
            }
            Transforms.Resize.Planes(src, c, Dataset.Height, Dataset.Width, resized, h, w);
            for (int k = 0; k < size; k++) dst[k] = (byte)Math.Clamp(MathF.Round(resized[k]), 0, 255);
        }
        var plan = (BatchTransform as Transforms.Augmentation)?.Plan(count, c, h, w, augment);
        return new Batch(new PixelBatch(pixels, count, c, h, w, _mean, _std, plan), labels) { Recyclable = true };
    }

    /// <summary>Scales 0–255 pixel values to [0, 1] and normalises them: (x / 255 − mean) / std.</summary>
    internal static void Normalize(ReadOnlySpan<byte> src, Span<float> dst, float mean, float std)
    {
        float scale = 1f / (255f * std), shift = -mean / std;
        for (int p = 0; p < src.Length; p++) dst[p] = src[p] * scale + shift;
    }

    /// <summary>Scales 0–255 values to [0, 1] and normalises them: (x / 255 − mean) / std.</summary>
    internal static void Normalize(ReadOnlySpan<float> src, Span<float> dst, float mean, float std)
    {
        float scale = 1f / (255f * std), shift = -mean / std;
        for (int p = 0; p < src.Length; p++) dst[p] = src[p] * scale + shift;
    }
}
