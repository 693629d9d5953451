namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>Decodes PNG, JPEG, BMP and binary PGM/PPM files, telling the format by the file's first bytes.</summary>
public static class ImageDecoder
{
    /// <summary>File extensions of the formats read here (lower case, with the dot).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".pgm", ".ppm", ".pnm"];

    /// <summary>Reads and decodes a file.</summary>
    /// <exception cref="InvalidImageException">The file is not a decodable image; the message names it and why.</exception>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    public static DecodedImage Decode(string path, DecoderLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Decode(File.ReadAllBytes(path), path, limits);
    }

    /// <summary>Decodes bytes; <paramref name="name"/> names them in errors.</summary>
    /// <exception cref="InvalidImageException">The bytes are not a decodable image.</exception>
    public static DecodedImage Decode(byte[] data, string name, DecoderLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        limits ??= DecoderLimits.Default;
        try
        {
            if (PngDecoder.IsPng(data)) return PngDecoder.Decode(data, name, limits);
            if (JpegDecoder.IsJpeg(data)) return JpegDecoder.Decode(data, name, limits);
            if (BmpDecoder.IsBmp(data)) return BmpDecoder.Decode(data, name, limits);
            if (PnmDecoder.IsPnm(data)) return PnmDecoder.Decode(data, name, limits);
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or ArgumentException or OverflowException or InvalidDataException or EndOfStreamException)
        {
            // Decoders check what they read; anything that still slips through is reported the same way.
            throw new InvalidImageException(name, $"it is damaged or truncated ({e.GetType().Name}: {e.Message}).", e);
        }
        var head = Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)));
        throw new InvalidImageException(name, data.Length == 0 ? "the file is empty." : $"its first bytes ({head}) are not those of a PNG, JPEG, BMP, PGM or PPM file.");
    }
}
