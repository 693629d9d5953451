using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>
/// Labelled images held in memory as 8-bit pixels [N, C, H, W], with class names in a stable order.
/// </summary>
public sealed class ImageDataset
{
    private readonly byte[] _pixels;
    private readonly int[] _labels;

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
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classes.Count)
                throw new ArgumentException($"Label {labels[i]} of item {i} is not an index into the {classes.Count} classes.", nameof(labels));
        _pixels = pixels;
        _labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
        Classes = classes.ToArray();
    }

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

    /// <summary>The pixels of item <paramref name="index"/>, [C, H, W].</summary>
    public ReadOnlySpan<byte> Pixels(int index) => _pixels.AsSpan(index * ImageSize, ImageSize);

    /// <summary>Bytes per image.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>The items at <paramref name="indices"/>, as a new dataset.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
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
        int plane = Height * Width;
        for (int c = 0; c < Channels; c++)
        {
            double sum = 0, sq = 0;
            long n = (long)Count * plane;
            for (int i = 0; i < Count; i++)
            {
                foreach (byte b in _pixels.AsSpan(i * ImageSize + c * plane, plane))
                {
                    double v = b / 255.0;
                    sum += v;
                    sq += v * v;
                }
            }
            double m = sum / n;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(1e-12, (sq - n * m * m) / Math.Max(1, n - 1)));
        }
        return (mean, std);
    }
}
