using System.Buffers.Binary;

namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// Windows BMP: uncompressed 24- and 32-bit (BI_RGB, or BI_BITFIELDS with 8-bit masks) and 8-bit palette images,
/// bottom-up or top-down, with any of the common info headers (12, 40, 52, 56, 108, 124 bytes). Output is RGB.
/// </summary>
public static class BmpDecoder
{
    /// <summary>Whether the data starts like a BMP file.</summary>
    public static bool IsBmp(ReadOnlySpan<byte> data) => data.Length >= 2 && data[0] == (byte)'B' && data[1] == (byte)'M';

    /// <summary>Decodes a BMP file's bytes.</summary>
    public static DecodedImage Decode(byte[] data, string name, DecoderLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        limits ??= DecoderLimits.Default;
        if (!IsBmp(data)) throw new InvalidImageException(name, "it does not start with 'BM'.");
        if (data.Length < 26) throw new InvalidImageException(name, "it is truncated (shorter than a BMP header).");
        uint pixelOffset = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(10));
        int headerSize = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(14));
        if (headerSize is not (12 or 40 or 52 or 56 or 108 or 124)) throw new InvalidImageException(name, $"its info header of {headerSize} bytes is not a known BMP header.");
        if (14 + headerSize > data.Length) throw new InvalidImageException(name, "it is truncated inside its info header.");
        var h = data.AsSpan(14, headerSize);
        long width, height;
        int bits, compression = 0, colorsUsed = 0;
        if (headerSize == 12)
        {
            width = BinaryPrimitives.ReadUInt16LittleEndian(h[4..]);
            height = BinaryPrimitives.ReadInt16LittleEndian(h[6..]);
            bits = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
        }
        else
        {
            width = BinaryPrimitives.ReadInt32LittleEndian(h[4..]);
            height = BinaryPrimitives.ReadInt32LittleEndian(h[8..]);
            bits = BinaryPrimitives.ReadUInt16LittleEndian(h[14..]);
            compression = BinaryPrimitives.ReadInt32LittleEndian(h[16..]);
            colorsUsed = BinaryPrimitives.ReadInt32LittleEndian(h[32..]);
        }
        bool topDown = height < 0;
        height = Math.Abs(height);
        limits.Check(name, width, height);
        if (bits is not (8 or 24 or 32)) throw new InvalidImageException(name, $"{bits}-bit BMP images are not supported (8, 24 and 32 are).");

        // Channel masks: BI_RGB's fixed layout, or BI_BITFIELDS masks from the header (or after a 40-byte one).
        uint rMask = 0xFF0000, gMask = 0xFF00, bMask = 0xFF;
        if (compression == 3 && bits == 32)
        {
            int maskAt = headerSize >= 52 ? 14 + 40 : 14 + headerSize;
            if (maskAt + 12 > data.Length) throw new InvalidImageException(name, "it is truncated inside its colour masks.");
            rMask = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(maskAt));
            gMask = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(maskAt + 4));
            bMask = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(maskAt + 8));
            foreach (var m in new[] { rMask, gMask, bMask })
                if (System.Numerics.BitOperations.PopCount(m) != 8 || m >> System.Numerics.BitOperations.TrailingZeroCount(m) != 0xFF)
                    throw new InvalidImageException(name, $"its colour mask 0x{m:X8} is not 8 contiguous bits.");
        }
        else if (compression != 0)
        {
            throw new InvalidImageException(name, $"BMP compression {compression} (RLE, JPEG or PNG inside BMP) is not supported.");
        }

        byte[]? palette = null;
        if (bits == 8)
        {
            int entries = colorsUsed is > 0 and <= 256 ? colorsUsed : 256;
            int entrySize = headerSize == 12 ? 3 : 4;
            int paletteAt = 14 + headerSize + (compression == 3 && headerSize == 40 ? 12 : 0);
            entries = Math.Min(entries, Math.Max(0, ((int)Math.Min(pixelOffset, int.MaxValue) - paletteAt) / entrySize));
            if (entries == 0 || paletteAt + entries * entrySize > data.Length) throw new InvalidImageException(name, "its palette is missing or truncated.");
            palette = new byte[entries * 3];
            for (int i = 0; i < entries; i++)
            {
                palette[3 * i] = data[paletteAt + i * entrySize + 2];
                palette[3 * i + 1] = data[paletteAt + i * entrySize + 1];
                palette[3 * i + 2] = data[paletteAt + i * entrySize];
            }
        }

        int w = (int)width, ht = (int)height;
        long stride = ((long)w * bits + 31) / 32 * 4;
        if (pixelOffset + stride * ht > data.Length)
            throw new InvalidImageException(name, $"it is truncated: {w}×{ht} pixels need {stride * ht} bytes from offset {pixelOffset}, the file has {data.Length}.");
        var pixels = new byte[(long)w * ht * 3];
        int rShift = System.Numerics.BitOperations.TrailingZeroCount(rMask), gShift = System.Numerics.BitOperations.TrailingZeroCount(gMask), bShift = System.Numerics.BitOperations.TrailingZeroCount(bMask);
        for (int y = 0; y < ht; y++)
        {
            var row = data.AsSpan((int)(pixelOffset + stride * (topDown ? y : ht - 1 - y)), (int)stride);
            long outRow = (long)y * w * 3;
            for (int x = 0; x < w; x++)
            {
                long at = outRow + 3L * x;
                if (bits == 8)
                {
                    int index = row[x];
                    if (3 * index + 2 >= palette!.Length) throw new InvalidImageException(name, $"a pixel uses palette entry {index} of {palette.Length / 3}.");
                    pixels[at] = palette[3 * index];
                    pixels[at + 1] = palette[3 * index + 1];
                    pixels[at + 2] = palette[3 * index + 2];
                }
                else if (bits == 24)
                {
                    pixels[at] = row[3 * x + 2];
                    pixels[at + 1] = row[3 * x + 1];
                    pixels[at + 2] = row[3 * x];
                }
                else
                {
                    uint v = BinaryPrimitives.ReadUInt32LittleEndian(row[(4 * x)..]);
                    pixels[at] = (byte)(v >> rShift);
                    pixels[at + 1] = (byte)(v >> gShift);
                    pixels[at + 2] = (byte)(v >> bShift);
                }
            }
        }
        return new DecodedImage(w, ht, 3, pixels);
    }
}
