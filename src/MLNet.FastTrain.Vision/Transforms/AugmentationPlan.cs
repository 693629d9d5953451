using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Vision.Transforms;

/// <summary>
/// A plane projective map in pixel coordinates (row y, column x):
/// (y, x) → ((m00·y + m01·x + m02) / w, (m10·y + m11·x + m12) / w) with w = m20·y + m21·x + m22.
/// Augmentations use it from output pixels to source pixels.
/// </summary>
public readonly record struct PixelMap(double M00, double M01, double M02, double M10, double M11, double M12, double M20, double M21, double M22)
{
    /// <summary>The map that moves nothing.</summary>
    public static PixelMap Identity => new(1, 0, 0, 0, 1, 0, 0, 0, 1);

    /// <summary>The affine map (y, x) → (a·y + b·x + c, d·y + e·x + f).</summary>
    public static PixelMap Affine(double a, double b, double c, double d, double e, double f) => new(a, b, c, d, e, f, 0, 0, 1);

    /// <summary>Maps a point.</summary>
    public (double Y, double X) Apply(double y, double x)
    {
        double w = M20 * y + M21 * x + M22;
        return ((M00 * y + M01 * x + M02) / w, (M10 * y + M11 * x + M12) / w);
    }

    /// <summary>The composition that applies <paramref name="first"/>, then <paramref name="then"/>: then ∘ first.</summary>
    public static PixelMap Compose(PixelMap then, PixelMap first) => new(
        then.M00 * first.M00 + then.M01 * first.M10 + then.M02 * first.M20,
        then.M00 * first.M01 + then.M01 * first.M11 + then.M02 * first.M21,
        then.M00 * first.M02 + then.M01 * first.M12 + then.M02 * first.M22,
        then.M10 * first.M00 + then.M11 * first.M10 + then.M12 * first.M20,
        then.M10 * first.M01 + then.M11 * first.M11 + then.M12 * first.M21,
        then.M10 * first.M02 + then.M11 * first.M12 + then.M12 * first.M22,
        then.M20 * first.M00 + then.M21 * first.M10 + then.M22 * first.M20,
        then.M20 * first.M01 + then.M21 * first.M11 + then.M22 * first.M21,
        then.M20 * first.M02 + then.M21 * first.M12 + then.M22 * first.M22);
}

/// <summary>
/// One step of a drawn augmentation, with its random choices for every image of the batch. The managed kernels
/// apply it on the host (<see cref="Apply"/>); another engine applies the same step with its own tensor operations
/// (docs/design.md §9, "Batches on the device").
/// </summary>
public abstract record AugmentationStage
{
    /// <summary>Applies the step to normalised float32 images [B, C, H, W] on the host, returning new images.</summary>
    public abstract Tensor Apply(Tensor images);

    /// <summary>A copy of the images, for a step that changes some of them.</summary>
    protected static Tensor CopyOf(Tensor images)
    {
        var copy = Tensor.Zeros(images.ShapeArray());
        copy.CopyFrom(images);
        return copy;
    }
}

/// <summary>Mirrors the images marked in <paramref name="Flipped"/>: left–right, or upside down when <paramref name="Vertical"/>.</summary>
public sealed record FlipStage(bool Vertical, bool[] Flipped) : AugmentationStage
{
    /// <inheritdoc />
    public override Tensor Apply(Tensor images)
    {
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var y = CopyOf(images);
        var src = images.AsSpan();
        var dst = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            if (!Flipped[i]) continue;
            for (int ch = 0; ch < c; ch++)
            {
                int plane = (i * c + ch) * h * w;
                for (int r = 0; r < h; r++)
                {
                    if (Vertical) src.Slice(plane + (h - 1 - r) * w, w).CopyTo(dst.Slice(plane + r * w, w));
                    else dst.Slice(plane + r * w, w).Reverse();
                }
            }
        }
        return y;
    }
}

/// <summary>
/// Moves image i by (<paramref name="Dy"/>[i], <paramref name="Dx"/>[i]) whole pixels, filling from a mirror reflection:
/// output (r, c) is source (r + dy, c + dx) reflected into the image. A reflection-padded random crop.
/// </summary>
public sealed record ShiftStage(int[] Dy, int[] Dx) : AugmentationStage
{
    /// <inheritdoc />
    public override Tensor Apply(Tensor images)
    {
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var y = Tensor.Zeros(images.ShapeArray());
        var src = images.AsSpan();
        var dst = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            for (int ch = 0; ch < c; ch++)
            {
                int plane = (i * c + ch) * h * w;
                for (int r = 0; r < h; r++)
                {
                    int row = plane + Reflection.Index(r + Dy[i], h) * w;
                    for (int col = 0; col < w; col++) dst[plane + r * w + col] = src[row + Reflection.Index(col + Dx[i], w)];
                }
            }
        }
        return y;
    }
}

/// <summary>
/// Resamples image i through <paramref name="Maps"/>[i] (output pixel → source pixel), bilinearly, with mirror
/// reflection beyond the borders; an image whose map is null is kept as it is.
/// </summary>
public sealed record ResampleStage(PixelMap?[] Maps) : AugmentationStage
{
    /// <inheritdoc />
    public override Tensor Apply(Tensor images)
    {
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var y = CopyOf(images);
        var src = images.AsSpan();
        var dst = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            if (Maps[i] is not { } map) continue;
            for (int r = 0; r < h; r++)
                for (int col = 0; col < w; col++)
                {
                    var (py, px) = map.Apply(r, col);
                    for (int ch = 0; ch < c; ch++)
                    {
                        int plane = (i * c + ch) * h * w;
                        dst[plane + r * w + col] = Bilinear(src.Slice(plane, h * w), h, w, py, px);
                    }
                }
        }
        return y;
    }

    private static float Bilinear(ReadOnlySpan<float> plane, int h, int w, double y, double x)
    {
        int y0 = (int)Math.Floor(y), x0 = (int)Math.Floor(x);
        double fy = y - y0, fx = x - x0;
        int r0 = Reflection.Index(y0, h) * w, r1 = Reflection.Index(y0 + 1, h) * w, c0 = Reflection.Index(x0, w), c1 = Reflection.Index(x0 + 1, w);
        return (float)((1 - fy) * ((1 - fx) * plane[r0 + c0] + fx * plane[r0 + c1]) + fy * ((1 - fx) * plane[r1 + c0] + fx * plane[r1 + c1]));
    }
}

/// <summary>
/// Changes the brightness and contrast of the images marked in <paramref name="Applied"/>: each value x of image i
/// becomes (x − mean) · <paramref name="Scale"/>[i] + mean + <paramref name="Shift"/>[i], the mean taken over the
/// whole image (all channels), on normalised values (a shift is in standard deviations).
/// </summary>
public sealed record LightingStage(bool[] Applied, double[] Scale, double[] Shift) : AugmentationStage
{
    /// <inheritdoc />
    public override Tensor Apply(Tensor images)
    {
        int b = images.Size(0), per = images.Length / Math.Max(1, b);
        var y = CopyOf(images);
        var s = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            if (!Applied[i]) continue;
            var item = s.Slice(i * per, per);
            float mean = System.Numerics.Tensors.TensorPrimitives.Sum<float>(item) / per;
            double scale = Scale[i], shift = Shift[i];
            for (int k = 0; k < item.Length; k++) item[k] = (float)((item[k] - mean) * scale + mean + shift);
        }
        return y;
    }
}

/// <summary>
/// The random choices of an augmentation for one batch of <see cref="Count"/> images of
/// <see cref="Channels"/>×<see cref="Height"/>×<see cref="Width"/>: the stages to apply, in order. Drawn once
/// (<see cref="Augmentation.Plan"/>), applied on the host (<see cref="Apply"/>) or by an engine on its device.
/// </summary>
public sealed class AugmentationPlan
{
    private readonly List<AugmentationStage> _stages = [];

    /// <summary>An empty plan for a batch of this shape.</summary>
    public AugmentationPlan(int count, int channels, int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        (Count, Channels, Height, Width) = (count, channels, height, width);
    }

    /// <summary>Images in the batch.</summary>
    public int Count { get; }

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <summary>The stages, in the order they apply.</summary>
    public IReadOnlyList<AugmentationStage> Stages => _stages;

    /// <summary>Appends a stage (its arrays must have one entry per image).</summary>
    public void Add(AugmentationStage stage)
    {
        ArgumentNullException.ThrowIfNull(stage);
        _stages.Add(stage);
    }

    /// <summary>Throws unless <paramref name="images"/> is a float32 batch [B, C, H, W].</summary>
    internal static void CheckImages(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Rank != 4 || images.DType != DType.Float32)
            throw new ArgumentException($"Augmentations take float32 batches [B, C, H, W]; got {images.DType} of shape {string.Join("×", images.ShapeArray())}.", nameof(images));
    }

    /// <summary>Applies every stage to normalised float32 images [Count, Channels, Height, Width] on the host.</summary>
    public Tensor Apply(Tensor images)
    {
        CheckImages(images);
        if (images.Size(0) != Count || images.Size(1) != Channels || images.Size(2) != Height || images.Size(3) != Width)
            throw new ArgumentException($"The plan was drawn for {Count}×{Channels}×{Height}×{Width} images, not {string.Join("×", images.ShapeArray())}.", nameof(images));
        foreach (var stage in _stages) images = stage.Apply(images);
        return images;
    }
}

/// <summary>Mirror reflection of indices, as the augmentations pad: …, 2, 1, 0, 1, 2, …, n−2, n−1, n−2, ….</summary>
public static class Reflection
{
    /// <summary>Reflects <paramref name="i"/> into [0, <paramref name="n"/>).</summary>
    public static int Index(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * (n - 1);
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - i;
    }
}
