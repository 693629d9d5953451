using System.Buffers.Binary;
using System.IO.Compression;
using MLNet.FastTrain.Engine.Serialization;

namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// PNG (ISO/IEC 15948): every colour type and bit depth, palettes, Adam7 interlacing, all five filters, chunk CRCs
/// checked. Output is 8-bit gray (colour types 0 and 4) or RGB (2, 3, 6); 16-bit samples are rounded to 8 bits
/// (v·255/65535, as libpng's scaling and ImageMagick do) and alpha is dropped.
/// </summary>
public static class PngDecoder
{
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    // Adam7 passes: x start, y start, x step, y step.
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    /// <summary>Whether the data starts with PNG's signature.</summary>
    public static bool IsPng(ReadOnlySpan<byte> data) => data.StartsWith(Signature);

    /// <summary>Decodes a PNG file's bytes.</summary>
    public static DecodedImage Decode(byte[] data, string name, DecoderLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        limits ??= DecoderLimits.Default;
        if (!IsPng(data)) throw new InvalidImageException(name, "it does not start with the PNG signature.");
        int pos = 8;
        int width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
        byte[]? palette = null;
        var idat = new List<(int Offset, int Length)>();
        bool ended = false;
        while (!ended)
        {
            if (pos + 8 > data.Length) throw new InvalidImageException(name, "it is truncated (no IEND chunk).");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
            if (length > int.MaxValue || pos + 12L + length > data.Length)
                throw new InvalidImageException(name, $"it is truncated (a chunk of {length} bytes runs past the end of the file).");
            var type = data.AsSpan(pos + 4, 4);
            var body = data.AsSpan(pos + 8, (int)length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos + 8 + (int)length));
            string typeName = System.Text.Encoding.ASCII.GetString(type);
            if (Crc32.Update(Crc32.Compute(type), body) != stored) throw new InvalidImageException(name, $"the CRC of its {typeName} chunk does not match (the file is damaged).");
            bool first = pos == 8;
            if (first && typeName != "IHDR") throw new InvalidImageException(name, "its first chunk is not IHDR.");
            switch (typeName)
            {
                case "IHDR":
                    if (length != 13) throw new InvalidImageException(name, "its IHDR chunk is not 13 bytes.");
                    width = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(body), int.MaxValue);
                    height = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(body[4..]), int.MaxValue);
                    depth = body[8];
                    colorType = body[9];
                    interlace = body[12];
                    if (body[10] != 0 || body[11] != 0) throw new InvalidImageException(name, "it uses an unknown compression or filter method.");
                    if (interlace > 1) throw new InvalidImageException(name, $"its interlace method {interlace} is unknown.");
                    bool valid = colorType switch
                    {
                        0 => depth is 1 or 2 or 4 or 8 or 16,
                        2 or 4 or 6 => depth is 8 or 16,
                        3 => depth is 1 or 2 or 4 or 8,
                        _ => false,
                    };
                    if (!valid) throw new InvalidImageException(name, $"colour type {colorType} with bit depth {depth} is not a valid PNG combination.");
                    limits.Check(name, width, height);
                    break;
                case "PLTE":
                    if (length % 3 != 0 || length == 0 || length > 768) throw new InvalidImageException(name, $"its palette has {length} bytes, not a multiple of 3 up to 768.");
                    palette = body.ToArray();
                    break;
                case "IDAT":
                    idat.Add((pos + 8, (int)length));
                    break;
                case "IEND":
                    ended = true;
                    break;
                default:
                    if ((type[0] & 0x20) == 0) throw new InvalidImageException(name, $"it has a critical chunk {typeName} this decoder does not know.");
                    break; // ancillary chunks (tRNS, gAMA, text, ...) do not change the stored samples
            }
            pos += 12 + (int)length;
        }
        if (idat.Count == 0) throw new InvalidImageException(name, "it has no image data (IDAT).");
        if (colorType == 3 && palette is null) throw new InvalidImageException(name, "it is palette-based but has no PLTE chunk.");

        int samples = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        int bitsPerPixel = samples * depth;
        int bpp = Math.Max(1, bitsPerPixel / 8);
        // The filtered data of every pass: one filter byte per row, then the row's bytes.
        long expected = 0;
        foreach (var (pw, ph) in Passes(width, height, interlace))
            if (pw > 0 && ph > 0) expected += ph * (1 + ((long)pw * bitsPerPixel + 7) / 8);
        var raw = Inflate(data, idat, expected, name);

        int outChannels = colorType is 0 or 4 ? 1 : 3;
        var pixels = new byte[(long)width * height * outChannels];
        int offset = 0;
        int passIndex = 0;
        foreach (var (pw, ph) in Passes(width, height, interlace))
        {
            var (x0, y0, dx, dy) = interlace == 0 ? (0, 0, 1, 1) : Adam7[passIndex];
            passIndex++;
            if (pw == 0 || ph == 0) continue;
            int stride = (int)(((long)pw * bitsPerPixel + 7) / 8);
            var previous = new byte[stride];
            var current = new byte[stride];
            for (int y = 0; y < ph; y++)
            {
                int filter = raw[offset];
                raw.AsSpan(offset + 1, stride).CopyTo(current);
                offset += 1 + stride;
                Unfilter(filter, current, previous, bpp, name);
                WriteRow(current, pw, depth, colorType, palette, pixels, width, outChannels, y0 + y * dy, x0, dx, name);
                (previous, current) = (current, previous);
            }
        }
        return new DecodedImage(width, height, outChannels, pixels);
    }

    private static IEnumerable<(int Width, int Height)> Passes(int width, int height, int interlace)
    {
        if (interlace == 0)
        {
            yield return (width, height);
            yield break;
        }
        foreach (var (x0, y0, dx, dy) in Adam7)
            yield return ((width - x0 + dx - 1) / dx, (height - y0 + dy - 1) / dy);
    }

    /// <summary>Inflates the concatenated IDAT data, never producing more than the image needs (a bomb stops there).</summary>
    private static byte[] Inflate(byte[] data, List<(int Offset, int Length)> chunks, long expected, string name)
    {
        if (expected > int.MaxValue) throw new InvalidImageException(name, "its image data would exceed 2 GB.");
        using var joined = new MemoryStream();
        foreach (var (o, l) in chunks) joined.Write(data, o, l);
        joined.Position = 0;
        var raw = new byte[expected];
        try
        {
            using var z = new ZLibStream(joined, CompressionMode.Decompress);
            int filled = 0;
            while (filled < raw.Length)
            {
                int n = z.Read(raw, filled, raw.Length - filled);
                if (n == 0) throw new InvalidImageException(name, $"its image data is truncated ({filled} of {expected} bytes).");
                filled += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidImageException(name, $"its compressed image data is damaged ({e.Message}).", e);
        }
        return raw;
    }

    private static void Unfilter(int filter, Span<byte> row, ReadOnlySpan<byte> prior, int bpp, string name)
    {
        switch (filter)
        {
            case 0: break;
            case 1:
                for (int i = bpp; i < row.Length; i++) row[i] += row[i - bpp];
                break;
            case 2:
                for (int i = 0; i < row.Length; i++) row[i] += prior[i];
                break;
            case 3:
                for (int i = 0; i < row.Length; i++) row[i] += (byte)(((i >= bpp ? row[i - bpp] : 0) + prior[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < row.Length; i++)
                {
                    int a = i >= bpp ? row[i - bpp] : 0, b = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default:
                throw new InvalidImageException(name, $"a row uses filter type {filter}; PNG defines 0 to 4.");
        }
    }

    private static void WriteRow(ReadOnlySpan<byte> row, int count, int depth, int colorType, byte[]? palette, byte[] pixels,
        int width, int channels, int y, int x0, int dx, string name)
    {
        long rowStart = (long)y * width;
        for (int i = 0; i < count; i++)
        {
            long at = (rowStart + x0 + (long)i * dx) * channels;
            switch (colorType)
            {
                case 0:
                    pixels[at] = depth switch
                    {
                        16 => Scale16(row, 2 * i),
                        8 => row[i],
                        _ => (byte)(Packed(row, i, depth) * 255 / ((1 << depth) - 1)),
                    };
                    break;
                case 4:
                    pixels[at] = depth == 16 ? Scale16(row, 4 * i) : row[2 * i];
                    break;
                case 3:
                    {
                        int index = depth == 8 ? row[i] : Packed(row, i, depth);
                        if (3 * index + 2 >= palette!.Length) throw new InvalidImageException(name, $"a pixel uses palette entry {index} of {palette.Length / 3}.");
                        pixels[at] = palette[3 * index];
                        pixels[at + 1] = palette[3 * index + 1];
                        pixels[at + 2] = palette[3 * index + 2];
                        break;
                    }
                default:
                    {
                        int samples = colorType == 2 ? 3 : 4;
                        for (int c = 0; c < 3; c++)
                            pixels[at + c] = depth == 16 ? Scale16(row, 2 * (samples * i + c)) : row[samples * i + c];
                        break;
                    }
            }
        }
    }

    private static int Packed(ReadOnlySpan<byte> row, int index, int depth)
    {
        int bit = index * depth;
        return (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
    }

    /// <summary>A 16-bit big-endian sample rounded to 8 bits: round(v · 255 / 65535).</summary>
    private static byte Scale16(ReadOnlySpan<byte> row, int offset)
    {
        int v = (row[offset] << 8) | row[offset + 1];
        return (byte)((v * 255L + 32767) / 65535);
    }
}
