namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// A decoded image: 8-bit samples stored row by row, <see cref="Channels"/> per pixel (1 gray, 3 RGB), as the
/// decoders give them. Alpha is dropped: samples are the stored colour values, not composited on a background.
/// </summary>
public sealed class DecodedImage
{
    /// <summary>Creates an image over <paramref name="pixels"/> (not copied).</summary>
    public DecodedImage(int width, int height, int channels, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"Image size {width}×{height} must be positive.");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"Images have 1 or 3 channels, not {channels}.");
        if (pixels.LongLength != (long)width * height * channels)
            throw new ArgumentException($"{width}×{height}×{channels} needs {(long)width * height * channels} bytes, not {pixels.Length}.", nameof(pixels));
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>1 (gray) or 3 (RGB).</summary>
    public int Channels { get; }

    /// <summary>Samples, interleaved: row by row, pixel by pixel, channel by channel.</summary>
    public byte[] Pixels { get; }

    /// <summary>
    /// 1, or the factor by which the file's image was reduced while decoding (a JPEG's DCT-domain 1/2, 1/4 or 1/8):
    /// pixel (x, y) then covers the file's pixels [x·r, (x+1)·r) × [y·r, (y+1)·r), the last row and column only
    /// partly, since <see cref="Width"/> is the file's width divided by r, rounded up.
    /// </summary>
    public int Reduction { get; init; } = 1;

    /// <summary>Width of the image as stored in the file (after its orientation), before any reduction.</summary>
    public int SourceWidth { get => _sourceWidth ?? Width; init => _sourceWidth = value; }

    /// <summary>Height of the image as stored in the file (after its orientation), before any reduction.</summary>
    public int SourceHeight { get => _sourceHeight ?? Height; init => _sourceHeight = value; }

    private readonly int? _sourceWidth, _sourceHeight;

    /// <summary>
    /// The image turned as an EXIF orientation says (1 as it is; 2–8 mirrored and/or rotated), so that it stands as
    /// it was taken; its reduction goes with it, and its source size turns with it.
    /// </summary>
    public static DecodedImage Oriented(DecodedImage image, int orientation)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (orientation is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(orientation), $"EXIF orientations are 1 to 8, not {orientation}.");
        if (orientation == 1) return image;
        int w = image.Width, h = image.Height, ch = image.Channels;
        bool swap = orientation >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        var output = new byte[image.Pixels.Length];
        for (int y = 0; y < oh; y++)
        {
            for (int x = 0; x < ow; x++)
            {
                // Where the output pixel (x, y) comes from in the stored image.
                var (sx, sy) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                image.Pixels.AsSpan((sy * w + sx) * ch, ch).CopyTo(output.AsSpan((y * ow + x) * ch, ch));
            }
        }
        return new DecodedImage(ow, oh, ch, output)
        {
            Reduction = image.Reduction, SourceWidth = swap ? image.SourceHeight : image.SourceWidth, SourceHeight = swap ? image.SourceWidth : image.SourceHeight,
        };
    }

    /// <summary>The same reduction and source size on other pixels of the same size.</summary>
    private DecodedImage Like(int channels, byte[] pixels) =>
        new(Width, Height, channels, pixels) { Reduction = Reduction, SourceWidth = SourceWidth, SourceHeight = SourceHeight };

    /// <summary>The samples as planes [C, H, W], the layout datasets and tensors use.</summary>
    public byte[] ToPlanar()
    {
        if (Channels == 1) return (byte[])Pixels.Clone();
        int plane = Width * Height;
        var planar = new byte[Pixels.Length];
        for (int i = 0; i < plane; i++)
        {
            planar[i] = Pixels[3 * i];
            planar[plane + i] = Pixels[3 * i + 1];
            planar[2 * plane + i] = Pixels[3 * i + 2];
        }
        return planar;
    }

    /// <summary>An image from planes [C, H, W] (the inverse of <see cref="ToPlanar"/>).</summary>
    public static DecodedImage FromPlanar(ReadOnlySpan<byte> planes, int channels, int height, int width)
    {
        int n = height * width;
        var pixels = new byte[planes.Length];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < channels; k++) pixels[i * channels + k] = planes[k * n + i];
        return new DecodedImage(width, height, channels, pixels);
    }

    /// <summary>The same image with 3 channels (gray repeated) or 1 (ITU-R BT.601 luma, as JPEG's Y), as asked.</summary>
    public DecodedImage WithChannels(int channels)
    {
        if (channels == Channels) return this;
        int n = Width * Height;
        if (channels == 3)
        {
            var rgb = new byte[n * 3];
            for (int i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = Pixels[i];
            return Like(3, rgb);
        }
        if (channels != 1) throw new ArgumentOutOfRangeException(nameof(channels), $"Images have 1 or 3 channels, not {channels}.");
        var gray = new byte[n];
        for (int i = 0; i < n; i++)
            gray[i] = (byte)((19595 * Pixels[3 * i] + 38470 * Pixels[3 * i + 1] + 7471 * Pixels[3 * i + 2] + 32768) >> 16);
        return Like(1, gray);
    }
}

/// <summary>
/// A file is not a decodable image: truncated, damaged, of an unknown or unsupported kind, or with dimensions
/// beyond the decoder's limits. <see cref="Path"/> names the file and <see cref="Reason"/> says what is wrong.
/// </summary>
public sealed class InvalidImageException : IOException
{
    /// <summary>Creates the exception.</summary>
    public InvalidImageException(string path, string reason, Exception? inner = null)
        : base($"'{path}' is not a valid image: {reason}", inner)
    {
        Path = path;
        Reason = reason;
    }

    /// <summary>The file (or the name given for in-memory data).</summary>
    public string Path { get; }

    /// <summary>What is wrong with it.</summary>
    public string Reason { get; }
}

/// <summary>Limits that keep hostile files from exhausting memory.</summary>
public sealed class DecoderLimits
{
    /// <summary>The default: 64 megapixels, 65 535 pixels a side.</summary>
    public static DecoderLimits Default { get; } = new();

    /// <summary>Most pixels (width × height) accepted. Default 64 Mi.</summary>
    public long MaxPixels { get; init; } = 64L << 20;

    /// <summary>Longest side accepted. Default 65 535.</summary>
    public int MaxSide { get; init; } = 65535;

    /// <summary>Throws when a header's dimensions are beyond the limits, before anything is allocated for them.</summary>
    internal void Check(string path, long width, long height)
    {
        if (width < 1 || height < 1) throw new InvalidImageException(path, $"its size {width}×{height} is empty.");
        if (width > MaxSide || height > MaxSide || width * height > MaxPixels)
            throw new InvalidImageException(path, $"its size {width}×{height} is beyond the decoder's limits ({MaxSide} a side, {MaxPixels} pixels).");
    }
}
