using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>
/// Labelled images as 8-bit pixels [N, C, H, W], with class names in a stable order: held in memory, or read row by
/// row from an on-disk cache (<see cref="ImageCache"/>), so that a dataset larger than memory costs only the rows
/// being read.
/// </summary>
public sealed class ImageDataset
{
    private readonly byte[] _pixels;
    private readonly int[] _labels;
    private readonly ImageCache.Rows? _rows;   // null: the pixels are in memory

    /// <summary>Creates a dataset; pixels are [count, channels, height, width] bytes, labels index <paramref name="classes"/>.</summary>
    public ImageDataset(byte[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classes);
        if (channels < 1 || height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(channels), $"Image size {channels}×{height}×{width} must be positive.");
        long expected = (long)labels.Length * channels * height * width;
        if (pixels.Length != expected)
            throw new ArgumentException($"{labels.Length} images of {channels}×{height}×{width} need {expected} pixel bytes, not {pixels.Length}.", nameof(pixels));
        if (classes.Count == 0) throw new ArgumentException("A dataset needs at least one class name.", nameof(classes));
        CheckLabels(labels, classes.Count);
        _pixels = pixels;
        _labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
        Classes = classes.ToArray();
    }

    /// <summary>A dataset whose pixels stay in a cache file: item i is row <c>rows.Index[i]</c> of it.</summary>
    internal ImageDataset(ImageCache.Rows rows, int[] labels, int channels, int size, IReadOnlyList<string> classes)
        : this([], [], channels, size, size, classes)
    {
        if (rows.Index.Length != labels.Length) throw new ArgumentException($"{rows.Index.Length} rows for {labels.Length} labels.", nameof(rows));
        CheckLabels(labels, Classes.Count);
        _rows = rows;
        _labels = labels;
    }

    private static void CheckLabels(int[] labels, int classes)
    {
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentException($"Label {labels[i]} of item {i} is not an index into the {classes} classes.", nameof(labels));
    }

    /// <summary>Whether the pixels are read from a cache file rather than held in memory.</summary>
    public bool IsOnDisk => _rows is not null;

    /// <summary>Number of items.</summary>
    public int Count => _labels.Length;

    /// <summary>Channels per image (1 gray, 3 RGB).</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <summary>Class names; a label is an index into this list.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The label of item <paramref name="index"/>.</summary>
    public int LabelOf(int index) => _labels[index];

    /// <summary>Every label, in item order.</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>The pixels of item <paramref name="index"/>, [C, H, W] (read into a new array when on disk).</summary>
    public ReadOnlySpan<byte> Pixels(int index) => _rows is null ? _pixels.AsSpan(index * ImageSize, ImageSize) : Pixels(index, new byte[ImageSize]);

    /// <summary>
    /// The pixels of item <paramref name="index"/>, [C, H, W]: a view of memory, or, for a dataset on disk, read
    /// into <paramref name="scratch"/> (at least <see cref="ImageSize"/> bytes) without allocating.
    /// </summary>
    public ReadOnlySpan<byte> Pixels(int index, Span<byte> scratch)
    {
        if (_rows is null) return _pixels.AsSpan(index * ImageSize, ImageSize);
        var destination = scratch[..ImageSize];
        _rows.Read(_rows.Index[index], destination);
        return destination;
    }

    /// <summary>Bytes per image.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>The items at <paramref name="indices"/>, as a new dataset.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (_rows is not null)
            return new ImageDataset(_rows.Select(indices), indices.Select(i => _labels[i]).ToArray(), Channels, Height, Classes);
        var pixels = new byte[indices.Count * ImageSize];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            Pixels(indices[i]).CopyTo(pixels.AsSpan(i * ImageSize));
            labels[i] = _labels[indices[i]];
        }
        return new ImageDataset(pixels, labels, Channels, Height, Width, Classes);
    }

    /// <summary>Splits off a seeded random fraction as a validation set.</summary>
    public (ImageDataset Train, ImageDataset Valid) Split(double validFraction, ulong seed)
    {
        if (!(validFraction > 0 && validFraction < 1)) throw new ArgumentOutOfRangeException(nameof(validFraction), $"The validation fraction must be in (0, 1), not {validFraction}.");
        var order = Enumerable.Range(0, Count).ToArray();
        new Generator(seed).Shuffle<int>(order);
        int valid = Math.Max(1, (int)Math.Round(Count * validFraction));
        return (Subset(order[valid..]), Subset(order[..valid]));
    }

    /// <summary>Per-channel mean and standard deviation of the pixels scaled to [0, 1].</summary>
    public (float[] Mean, float[] Std) ChannelStatistics()
    {
        var mean = new float[Channels];
        var std = new float[Channels];
        var sum = new double[Channels];
        var sq = new double[Channels];
        int plane = Height * Width;
        var scratch = new byte[ImageSize];
        // Item by item (a row read once from a cache file), each channel summed in item order.
        for (int i = 0; i < Count; i++)
        {
            var pixels = Pixels(i, scratch);
            for (int c = 0; c < Channels; c++)
            {
                foreach (byte b in pixels.Slice(c * plane, plane))
                {
                    double v = b / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        long n = (long)Count * plane;
        for (int c = 0; c < Channels; c++)
        {
            double m = sum[c] / n;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(1e-12, (sq[c] - n * m * m) / Math.Max(1, n - 1)));
        }
        return (mean, std);
    }
}
