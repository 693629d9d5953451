using System.Buffers.Binary;

namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// Windows BMP: uncompressed 24- and 32-bit (BI_RGB, or BI_BITFIELDS with 8-bit masks), 1-, 4- and 8-bit palette
/// images, uncompressed or run-length encoded (BI_RLE8, BI_RLE4), bottom-up or top-down, with any of the common info
/// headers (12, 40, 52, 56, 108, 124 bytes). Output is RGB. Pixels an RLE image skips (a delta or an early end of
/// line) take palette entry 0.
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
        if (bits is not (1 or 4 or 8 or 24 or 32)) throw new InvalidImageException(name, $"{bits}-bit BMP images are not supported (1, 4, 8, 24 and 32 are).");
        bool rle = compression is 1 or 2;
        if (compression == 1 && bits != 8 || compression == 2 && bits != 4)
            throw new InvalidImageException(name, $"its compression {(compression == 1 ? "RLE8" : "RLE4")} needs {(compression == 1 ? 8 : 4)}-bit pixels, not {bits}.");
        if (rle && topDown) throw new InvalidImageException(name, "it is a top-down image with RLE compression, which BMP does not allow.");

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
        else if (compression != 0 && !rle)
        {
            throw new InvalidImageException(name, $"BMP compression {compression} (JPEG or PNG inside BMP, or bit fields on {bits}-bit pixels) is not supported.");
        }

        byte[]? palette = null;
        if (bits <= 8)
        {
            int entries = colorsUsed is > 0 and <= 256 ? Math.Min(colorsUsed, 1 << bits) : 1 << bits;
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
        if (pixelOffset >= data.Length) throw new InvalidImageException(name, $"its pixel data would start at {pixelOffset}, past the end of the file ({data.Length} bytes).");
        if (palette is not null)
        {
            var indices = rle ? Rle(data.AsSpan((int)pixelOffset), w, ht, bits, name) : Unpack(data, pixelOffset, w, ht, bits, topDown, name);
            return Colour(indices, palette, w, ht, name);
        }
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
                if (bits == 24)
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

    /// <summary>Palette indices of an uncompressed 1-, 4- or 8-bit image, top row first.</summary>
    private static byte[] Unpack(byte[] data, uint pixelOffset, int w, int ht, int bits, bool topDown, string name)
    {
        long stride = ((long)w * bits + 31) / 32 * 4;
        if (pixelOffset + stride * ht > data.Length)
            throw new InvalidImageException(name, $"it is truncated: {w}×{ht} pixels need {stride * ht} bytes from offset {pixelOffset}, the file has {data.Length}.");
        var indices = new byte[(long)w * ht];
        int perByte = 8 / bits, mask = (1 << bits) - 1;
        for (int y = 0; y < ht; y++)
        {
            var row = data.AsSpan((int)(pixelOffset + stride * (topDown ? y : ht - 1 - y)), (int)stride);
            var output = indices.AsSpan(y * w, w);
            // The leftmost pixel is in the most significant bits.
            for (int x = 0; x < w; x++) output[x] = (byte)(row[x / perByte] >> (bits * (perByte - 1 - x % perByte)) & mask);
        }
        return indices;
    }

    /// <summary>
    /// Palette indices of a BI_RLE8 or BI_RLE4 image, top row first. Runs: a count and a value (RLE4: two indices
    /// that alternate); escapes after a zero count: 0 end of line, 1 end of image, 2 a move right and down, 3–255 that
    /// many literal indices, padded to an even number of bytes.
    /// </summary>
    private static byte[] Rle(ReadOnlySpan<byte> src, int w, int ht, int bits, string name)
    {
        var indices = new byte[(long)w * ht];
        // row counts from the bottom, as the file stores it; x stops at w (pixels past a row's end are dropped), so
        // however long a hostile line runs it cannot overflow.
        int x = 0, row = 0, at = 0;
        void Put(Span<byte> output, int index)
        {
            if (x < w && row < ht) output[(ht - 1 - row) * w + x] = (byte)index;
            x = Math.Min(x + 1, w);
        }
        while (true)
        {
            if (at + 2 > src.Length) throw new InvalidImageException(name, "it is truncated inside its run-length encoded pixels.");
            int count = src[at], value = src[at + 1];
            at += 2;
            if (count > 0)
            {
                for (int k = 0; k < count; k++) Put(indices, bits == 8 ? value : k % 2 == 0 ? value >> 4 : value & 15);
                continue;
            }
            switch (value)
            {
                case 0: x = 0; row++; break;
                case 1: return indices;
                case 2:
                    if (at + 2 > src.Length) throw new InvalidImageException(name, "it is truncated inside a run-length move.");
                    x = Math.Min(x + src[at], w);
                    row += src[at + 1];
                    at += 2;
                    break;
                default:
                    int bytes = bits == 8 ? value : (value + 1) / 2;
                    if (at + bytes > src.Length) throw new InvalidImageException(name, "it is truncated inside a run of literal pixels.");
                    for (int k = 0; k < value; k++) Put(indices, bits == 8 ? src[at + k] : k % 2 == 0 ? src[at + k / 2] >> 4 : src[at + k / 2] & 15);
                    at += bytes + (bytes & 1);
                    break;
            }
            if (row > ht) throw new InvalidImageException(name, $"its run-length encoded pixels run past its {ht} rows.");
        }
    }

    /// <summary>The RGB image of palette indices.</summary>
    private static DecodedImage Colour(byte[] indices, byte[] palette, int w, int ht, string name)
    {
        var pixels = new byte[indices.LongLength * 3];
        for (long i = 0; i < indices.LongLength; i++)
        {
            int index = indices[i];
            if (3 * index + 2 >= palette.Length) throw new InvalidImageException(name, $"a pixel uses palette entry {index} of {palette.Length / 3}.");
            pixels[3 * i] = palette[3 * index];
            pixels[3 * i + 1] = palette[3 * index + 1];
            pixels[3 * i + 2] = palette[3 * index + 2];
        }
        return new DecodedImage(w, ht, 3, pixels);
    }
}
