namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// Decodes JPEG, PNG, BMP, binary PGM/PPM, WebP and GIF (first frame) files, telling the format by the file's first
/// bytes: PNG, BMP and PNM with our own decoders, WebP and GIF through Skia (<see cref="SkiaDecoder"/>), JPEG as
/// <see cref="Jpeg"/> says. ICC profiles are ignored: samples come out as stored.
/// </summary>
public static class ImageDecoder
{
    /// <summary>
    /// Which decoder reads JPEGs. Default <see cref="JpegDecoding.Auto"/>: Skia's libjpeg-turbo where its native
    /// library loads (bit for bit as djpeg, and 2.5× our managed decoder's speed at full size, 5× when reducing
    /// for a 224 px target: docs/images.md), else our managed <see cref="JpegDecoder"/>. Set it before loading.
    /// </summary>
    public static JpegDecoding Jpeg { get; set; } = JpegDecoding.Auto;

    private static bool JpegThroughSkia => Jpeg == JpegDecoding.Skia || Jpeg == JpegDecoding.Auto && SkiaDecoder.IsAvailable;

    /// <summary>File extensions of the formats read here (lower case, with the dot).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".pgm", ".ppm", ".pnm", ".webp", ".gif"];

    /// <summary>Reads and decodes a file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">Largest image accepted.</param>
    /// <param name="minSide">
    /// When positive, the image may come out smaller, with both sides still at least this long (or as long as the
    /// file's): JPEGs are decoded in the DCT domain at 1/2, 1/4 or 1/8 of their size (<see cref="DecodedImage.Reduction"/>
    /// says which). Other formats are decoded at full size.
    /// </param>
    /// <exception cref="InvalidImageException">The file is not a decodable image; the message names it and why.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    public static DecodedImage Decode(string path, DecoderLimits? limits = null, int minSide = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Decode(File.ReadAllBytes(path), path, limits, minSide);
    }

    /// <summary>Decodes bytes; <paramref name="name"/> names them in errors. <paramref name="minSide"/> as for a file.</summary>
    /// <exception cref="InvalidImageException">The bytes are not a decodable image.</exception>
    public static DecodedImage Decode(byte[] data, string name, DecoderLimits? limits = null, int minSide = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(minSide);
        limits ??= DecoderLimits.Default;
        try
        {
            if (PngDecoder.IsPng(data)) return PngDecoder.Decode(data, name, limits);
            if (JpegDecoder.IsJpeg(data))
            {
                if (JpegThroughSkia) return SkiaDecoder.Decode(data, name, limits, minSide);
                return minSide > 0 ? JpegDecoder.DecodeAtLeast(data, name, minSide, limits) : JpegDecoder.Decode(data, name, limits);
            }
            if (BmpDecoder.IsBmp(data)) return BmpDecoder.Decode(data, name, limits);
            if (PnmDecoder.IsPnm(data)) return PnmDecoder.Decode(data, name, limits);
            if (SkiaDecoder.IsWebP(data) || SkiaDecoder.IsGif(data)) return SkiaDecoder.Decode(data, name, limits);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException && e.ToString().Contains("SkiaSharp", StringComparison.Ordinal))
        {
            throw new NotSupportedException(
                $"'{name}' is decoded through SkiaSharp, and its native library could not be loaded: reference the package SkiaSharp.NativeAssets.Linux.NoDependencies (Linux) or SkiaSharp's own native assets (JPEGs can also be read by the managed decoder: ImageDecoder.Jpeg = JpegDecoding.Managed).", e);
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or ArgumentException or OverflowException or InvalidDataException or EndOfStreamException)
        {
            // Decoders check what they read; anything that still slips through is reported the same way.
            throw new InvalidImageException(name, $"it is damaged or truncated ({e.GetType().Name}: {e.Message}).", e);
        }
        var head = Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)));
        throw new InvalidImageException(name, data.Length == 0 ? "the file is empty." : $"its first bytes ({head}) are not those of a PNG, JPEG, BMP, PGM, PPM, WebP or GIF file.");
    }
}

/// <summary>Which decoder reads JPEGs (<see cref="ImageDecoder.Jpeg"/>).</summary>
public enum JpegDecoding
{
    /// <summary>Skia where its native library loads, else the managed decoder.</summary>
    Auto,

    /// <summary>Our managed <see cref="JpegDecoder"/>: no native code.</summary>
    Managed,

    /// <summary>Skia's libjpeg-turbo (<see cref="SkiaDecoder"/>).</summary>
    Skia,
}
