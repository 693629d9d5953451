namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// Binary Netpbm images: PGM (P5, gray) and PPM (P6, RGB), 8-bit (maxval below 256) and 16-bit (big-endian).
/// Samples are scaled to 8 bits as round(v · 255 / maxval).
/// </summary>
public static class PnmDecoder
{
    /// <summary>Whether the data starts with P5 or P6 and white space.</summary>
    public static bool IsPnm(ReadOnlySpan<byte> data) =>
        data.Length >= 3 && data[0] == (byte)'P' && data[1] is (byte)'5' or (byte)'6' && IsSpace(data[2]);

    /// <summary>Decodes a PGM or PPM file's bytes.</summary>
    public static DecodedImage Decode(byte[] data, string name, DecoderLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        limits ??= DecoderLimits.Default;
        if (!IsPnm(data)) throw new InvalidImageException(name, "it does not start with P5 or P6.");
        int channels = data[1] == (byte)'5' ? 1 : 3;
        int pos = 2;
        long width = Number(data, ref pos, name, "width");
        long height = Number(data, ref pos, name, "height");
        long maxval = Number(data, ref pos, name, "maxval");
        if (maxval is < 1 or > 65535) throw new InvalidImageException(name, $"its maxval {maxval} is outside 1–65535.");
        limits.Check(name, width, height);
        pos++; // the single white-space byte before the samples
        int bytesPerSample = maxval < 256 ? 1 : 2;
        long count = width * height * channels;
        if (pos + count * bytesPerSample > data.Length)
            throw new InvalidImageException(name, $"it is truncated: {width}×{height}×{channels} samples need {count * bytesPerSample} bytes after the header, the file has {data.Length - pos}.");
        var pixels = new byte[count];
        for (long i = 0; i < count; i++)
        {
            int v = bytesPerSample == 1 ? data[pos + i] : (data[pos + 2 * i] << 8) | data[pos + 2 * i + 1];
            if (v > maxval) throw new InvalidImageException(name, $"sample {i} is {v}, above its maxval {maxval}.");
            pixels[i] = maxval == 255 ? (byte)v : (byte)((v * 255L + maxval / 2) / maxval);
        }
        return new DecodedImage((int)width, (int)height, channels, pixels);
    }

    private static long Number(byte[] data, ref int pos, string name, string what)
    {
        while (pos < data.Length && (IsSpace(data[pos]) || data[pos] == (byte)'#'))
        {
            if (data[pos] == (byte)'#') while (pos < data.Length && data[pos] != (byte)'\n') pos++;
            else pos++;
        }
        long value = 0;
        int start = pos;
        while (pos < data.Length && data[pos] is >= (byte)'0' and <= (byte)'9' && pos - start < 10) value = value * 10 + (data[pos++] - '0');
        if (pos == start || pos >= data.Length || !IsSpace(data[pos])) throw new InvalidImageException(name, $"its header's {what} is not a number.");
        return value;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0B or 0x0C;
}
