using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.Vision.Transforms;

/// <summary>A transform of a whole batch of images [B, C, H, W], drawing its random choices from the generator.</summary>
public delegate Tensor BatchTransform(Tensor images, Generator generator);

/// <summary>
/// Batch augmentations applied to normalised images, in the style of fastai's batch transforms. Every random choice
/// comes from the generator passed in, so the same seed gives the same augmented batch.
/// </summary>
public static class Augmentations
{
    /// <summary>
    /// fastai's aug_transforms defaults: horizontal flip with p 0.5; rotation up to ±10°, zoom 1–1.1 and perspective
    /// warp 0.2, each with p 0.75, in one resampling; brightness and contrast (lighting 0.2) with p 0.75.
    /// </summary>
    public static BatchTransform Default(double maxRotate = 10, double maxZoom = 1.1, double maxLighting = 0.2, double maxWarp = 0.2, double pAffine = 0.75, double pLighting = 0.75) =>
        Compose(Flip(0.5), Geometric(maxRotate, 1.0, maxZoom, maxWarp, pAffine), Lighting(maxLighting, pLighting));

    /// <summary>
    /// The recipes' default: the preset fit for the batch's image size. Small images (shorter side at most
    /// <paramref name="smallSide"/>, Fashion-MNIST's 28 or CIFAR's 32) get a horizontal flip with p 0.5 and a random
    /// shift by up to 1/14 of the side (reflection-padded crop, 2 px at 28), as fastai trains on CIFAR-sized images;
    /// larger ones get <see cref="Default"/>. On full Fashion-MNIST the lighter preset gave the ResNet-9 0.7 points more
    /// after 7 epochs than <see cref="Default"/>'s rotations and warps, at less CPU time (docs/default-recipe.md).
    /// </summary>
    public static BatchTransform BySize(int smallSide = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(smallSide, 1);
        var large = Default();
        var flip = Flip(0.5);
        return (images, g) =>
        {
            Check(images);
            int side = Math.Min(images.Size(2), images.Size(3));
            if (side > smallSide) return large(images, g);
            return PadCrop(Math.Max(1, (int)Math.Round(side / 14.0)))(flip(images, g), g);
        };
    }

    /// <summary>Applies transforms in order.</summary>
    public static BatchTransform Compose(params BatchTransform[] transforms)
    {
        ArgumentNullException.ThrowIfNull(transforms);
        return (images, g) =>
        {
            foreach (var t in transforms) images = t(images, g);
            return images;
        };
    }

    /// <summary>Flips each image left–right with probability <paramref name="p"/>.</summary>
    public static BatchTransform Flip(double p = 0.5) => (images, g) =>
    {
        Check(images);
        var y = Copy(images);
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var s = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            if (g.NextDouble() >= p) continue;
            for (int ch = 0; ch < c; ch++)
                for (int r = 0; r < h; r++) s.Slice(((i * c + ch) * h + r) * w, w).Reverse();
        }
        return y;
    };

    /// <summary>Flips each image upside down with probability <paramref name="p"/>.</summary>
    public static BatchTransform FlipVertical(double p = 0.5) => (images, g) =>
    {
        Check(images);
        var y = Copy(images);
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var src = images.AsSpan();
        var dst = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            if (g.NextDouble() >= p) continue;
            for (int ch = 0; ch < c; ch++)
            {
                int plane = (i * c + ch) * h * w;
                for (int r = 0; r < h; r++) src.Slice(plane + (h - 1 - r) * w, w).CopyTo(dst.Slice(plane + r * w, w));
            }
        }
        return y;
    };

    /// <summary>
    /// Crops a random window of each image — an area fraction in [<paramref name="minScale"/>, 1] of the image and an
    /// aspect ratio (log-uniform) in [<paramref name="minRatio"/>, <paramref name="maxRatio"/>] — and resizes it back
    /// to the image's size bilinearly, as torchvision's and fastai's RandomResizedCrop. After 10 draws that do not fit,
    /// the whole image is kept.
    /// </summary>
    public static BatchTransform RandomResizedCrop(double minScale = 0.08, double minRatio = 3.0 / 4, double maxRatio = 4.0 / 3) => (images, g) =>
    {
        Check(images);
        if (!(minScale > 0 && minScale <= 1) || !(minRatio > 0) || maxRatio < minRatio)
            throw new ArgumentOutOfRangeException(nameof(minScale), $"Scale [{minScale}, 1] and ratio [{minRatio}, {maxRatio}] must be positive ranges.");
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var y = Tensor.Zeros(images.ShapeArray());
        var src = images.AsSpan();
        var dst = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            double cw = w, ch = h, x0 = 0, y0 = 0;
            for (int attempt = 0; attempt < 10; attempt++)
            {
                double area = h * w * (minScale + g.NextDouble() * (1 - minScale));
                double ratio = Math.Exp(Math.Log(minRatio) + g.NextDouble() * (Math.Log(maxRatio) - Math.Log(minRatio)));
                double tw = Math.Sqrt(area * ratio), th = Math.Sqrt(area / ratio);
                double fx = g.NextDouble(), fy = g.NextDouble();
                if (tw > w || th > h) continue;
                (cw, ch, x0, y0) = (tw, th, fx * (w - tw), fy * (h - th));
                break;
            }
            for (int ch2 = 0; ch2 < c; ch2++)
            {
                int plane = (i * c + ch2) * h * w;
                var source = src.Slice(plane, h * w);
                for (int r = 0; r < h; r++)
                    for (int col = 0; col < w; col++)
                        dst[plane + r * w + col] = Bilinear(source, h, w, y0 + (r + 0.5) * ch / h - 0.5, x0 + (col + 0.5) * cw / w - 0.5);
            }
        }
        return y;
    };

    /// <summary>
    /// Perspective warp as fastai's: with probability <paramref name="p"/> per image, the corners move by up to
    /// <paramref name="magnitude"/> of the half-size, tilting the image about its horizontal and vertical axes.
    /// </summary>
    public static BatchTransform Warp(double magnitude = 0.2, double p = 0.75) => Geometric(0, 1, 1, magnitude, p);

    /// <summary>
    /// Rotation (±<paramref name="maxRotate"/> degrees), zoom ([<paramref name="minZoom"/>, <paramref name="maxZoom"/>])
    /// and perspective warp (corner shifts up to <paramref name="maxWarp"/>), each applied with probability
    /// <paramref name="p"/> per image, combined into one projective map and sampled once (bilinear, reflected borders).
    /// </summary>
    public static BatchTransform Geometric(double maxRotate = 10, double minZoom = 1.0, double maxZoom = 1.1, double maxWarp = 0.2, double p = 0.75) => (images, g) =>
    {
        Check(images);
        if (!(minZoom > 0) || maxZoom < minZoom) throw new ArgumentOutOfRangeException(nameof(minZoom), $"Zoom range [{minZoom}, {maxZoom}] is invalid.");
        if (maxWarp is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(maxWarp), $"Warp magnitude must be in [0, 1), not {maxWarp}.");
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var y = Copy(images);
        var src = images.AsSpan();
        var dst = y.AsSpan();
        double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0, sy = Math.Max(cy, 0.5), sx = Math.Max(cx, 0.5);
        for (int i = 0; i < b; i++)
        {
            // Every value is drawn whether or not it is used, so one image's choices never shift another's.
            bool rotate = g.NextDouble() < p, zoomIt = g.NextDouble() < p, warpIt = g.NextDouble() < p;
            double angle = (2 * g.NextDouble() - 1) * maxRotate * Math.PI / 180;
            double zoom = minZoom + g.NextDouble() * (maxZoom - minZoom);
            double wx = (2 * g.NextDouble() - 1) * maxWarp, wy = (2 * g.NextDouble() - 1) * maxWarp;
            if (!rotate) angle = 0;
            if (!zoomIt) zoom = 1;
            if (!warpIt) wx = wy = 0;
            if (angle == 0 && zoom == 1 && wx == 0 && wy == 0) continue;
            // Output → source, in coordinates normalised to [-1, 1]: the warp's homography, then the inverse rotation and zoom.
            var warp = Homography.FromCorners([(-1 - wy, -1 - wx), (-1 + wy, 1 + wx), (1 + wy, -1 + wx), (1 - wy, 1 - wx)]);
            double cos = Math.Cos(angle) / zoom, sin = Math.Sin(angle) / zoom;
            for (int r = 0; r < h; r++)
                for (int col = 0; col < w; col++)
                {
                    var (vy, vx) = warp.Apply((r - cy) / sy, (col - cx) / sx);
                    double py = (cos * vy - sin * vx) * sy + cy, px = (sin * vy + cos * vx) * sx + cx;
                    for (int ch = 0; ch < c; ch++)
                    {
                        int plane = (i * c + ch) * h * w;
                        dst[plane + r * w + col] = Bilinear(src.Slice(plane, h * w), h, w, py, px);
                    }
                }
        }
        return y;
    };

    /// <summary>Pads each image by <paramref name="padding"/> pixels with a mirror reflection, then crops a random window of the original size.</summary>
    public static BatchTransform PadCrop(int padding = 4) => (images, g) =>
    {
        Check(images);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var y = Tensor.Zeros(images.ShapeArray());
        var src = images.AsSpan();
        var dst = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            int dy = g.NextInt(2 * padding + 1) - padding, dx = g.NextInt(2 * padding + 1) - padding;
            for (int ch = 0; ch < c; ch++)
            {
                int plane = (i * c + ch) * h * w;
                for (int r = 0; r < h; r++)
                    for (int col = 0; col < w; col++)
                        dst[plane + r * w + col] = src[plane + Reflect(r + dy, h) * w + Reflect(col + dx, w)];
            }
        }
        return y;
    };

    /// <summary>
    /// With probability <paramref name="p"/> per image, rotates by an angle uniform in ±<paramref name="maxRotate"/>
    /// degrees and zooms by a factor uniform in [<paramref name="minZoom"/>, <paramref name="maxZoom"/>] about the
    /// centre, sampling bilinearly with reflection at the borders.
    /// </summary>
    public static BatchTransform Affine(double maxRotate = 10, double minZoom = 1.0, double maxZoom = 1.1, double p = 0.75) => (images, g) =>
    {
        Check(images);
        if (!(minZoom > 0) || maxZoom < minZoom) throw new ArgumentOutOfRangeException(nameof(minZoom), $"Zoom range [{minZoom}, {maxZoom}] is invalid.");
        int b = images.Size(0), c = images.Size(1), h = images.Size(2), w = images.Size(3);
        var y = Copy(images);
        var src = images.AsSpan();
        var dst = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            // Draw every value even when the transform is skipped, so one item's choice never shifts another's.
            bool apply = g.NextDouble() < p;
            double angle = (2 * g.NextDouble() - 1) * maxRotate * Math.PI / 180;
            double zoom = minZoom + g.NextDouble() * (maxZoom - minZoom);
            if (!apply) continue;
            // Inverse map: output pixel → source position, rotating by −angle and scaling by 1/zoom about the centre.
            double cos = Math.Cos(angle) / zoom, sin = Math.Sin(angle) / zoom;
            double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
            for (int r = 0; r < h; r++)
                for (int col = 0; col < w; col++)
                {
                    double yy = r - cy, xx = col - cx;
                    double sy = cos * yy - sin * xx + cy, sx = sin * yy + cos * xx + cx;
                    for (int ch = 0; ch < c; ch++)
                    {
                        int plane = (i * c + ch) * h * w;
                        dst[plane + r * w + col] = Bilinear(src.Slice(plane, h * w), h, w, sy, sx);
                    }
                }
        }
        return y;
    };

    /// <summary>
    /// With probability <paramref name="p"/> per image, changes brightness (a shift of up to ±<paramref name="maxLighting"/>
    /// standard deviations) and contrast (a scale in [1/(1+max), 1+max] about the image's mean).
    /// </summary>
    public static BatchTransform Lighting(double maxLighting = 0.2, double p = 0.75) => (images, g) =>
    {
        Check(images);
        int b = images.Size(0), per = images.Length / Math.Max(1, b);
        var y = Copy(images);
        var s = y.AsSpan();
        for (int i = 0; i < b; i++)
        {
            bool apply = g.NextDouble() < p;
            double shift = (2 * g.NextDouble() - 1) * maxLighting;
            double scale = Math.Exp((2 * g.NextDouble() - 1) * Math.Log(1 + maxLighting));
            if (!apply) continue;
            var item = s.Slice(i * per, per);
            float mean = System.Numerics.Tensors.TensorPrimitives.Sum<float>(item) / per;
            for (int k = 0; k < item.Length; k++) item[k] = (float)((item[k] - mean) * scale + mean + shift);
        }
        return y;
    };

    private static float Bilinear(ReadOnlySpan<float> plane, int h, int w, double y, double x)
    {
        int y0 = (int)Math.Floor(y), x0 = (int)Math.Floor(x);
        double fy = y - y0, fx = x - x0;
        int r0 = Reflect(y0, h) * w, r1 = Reflect(y0 + 1, h) * w, c0 = Reflect(x0, w), c1 = Reflect(x0 + 1, w);
        return (float)((1 - fy) * ((1 - fx) * plane[r0 + c0] + fx * plane[r0 + c1]) + fy * ((1 - fx) * plane[r1 + c0] + fx * plane[r1 + c1]));
    }

    /// <summary>Mirror-reflects an index into [0, n) (…, 2, 1, 0, 1, 2, …, n−2, n−1, n−2, …).</summary>
    internal static int Reflect(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * (n - 1);
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - i;
    }

    private static Tensor Copy(Tensor images)
    {
        var y = Tensor.Zeros(images.ShapeArray());
        y.CopyFrom(images);
        return y;
    }

    private static void Check(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Rank != 4 || images.DType != DType.Float32)
            throw new ArgumentException($"Augmentations take float32 batches [B, C, H, W]; got {images.DType} of shape {string.Join("×", images.ShapeArray())}.", nameof(images));
    }
}
