using System.Buffers.Binary;
using System.IO.Compression;
using MLNet.FastTrain.Engine.Serialization;

namespace MLNet.FastTrain.Vision.Encoders;

/// <summary>
/// Writes 8-bit grayscale or RGB images as PNG (ISO/IEC 15948): signature, IHDR, one zlib-compressed IDAT whose
/// scanlines use the Up or None filter (whichever has the smaller sum of absolute values), IEND; each chunk
/// with its CRC-32.
/// </summary>
public static class PngEncoder
{
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Encodes pixels stored row by row, <paramref name="channels"/> bytes per pixel (1 gray, 3 RGB).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"Image size {width}×{height} must be positive.");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"PNG encoding takes 1 (gray) or 3 (RGB) channels, not {channels}.");
        int stride = width * channels;
        if (pixels.Length != (long)stride * height) throw new ArgumentException($"{width}×{height}×{channels} needs {stride * height} bytes, not {pixels.Length}.", nameof(pixels));

        using var output = new MemoryStream();
        output.Write(Signature);
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], height);
        header[8] = 8;                              // bit depth
        header[9] = (byte)(channels == 1 ? 0 : 2);  // colour type: grayscale or truecolour
        header[10] = header[11] = header[12] = 0;   // deflate, adaptive filtering, no interlace
        WriteChunk(output, "IHDR"u8, header);

        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
        {
            var line = new byte[stride + 1];
            for (int y = 0; y < height; y++)
            {
                var row = pixels.Slice(y * stride, stride);
                // Filter type 2 (Up) subtracts the byte above; choose it when it makes the row smaller.
                long none = 0, up = 0;
                for (int i = 0; i < stride; i++)
                {
                    none += Math.Abs((int)(sbyte)row[i]);
                    up += y == 0 ? Math.Abs((int)(sbyte)row[i]) : Math.Abs((int)(sbyte)(row[i] - pixels[(y - 1) * stride + i]));
                }
                bool useUp = y > 0 && up < none;
                line[0] = (byte)(useUp ? 2 : 0);
                for (int i = 0; i < stride; i++) line[i + 1] = useUp ? (byte)(row[i] - pixels[(y - 1) * stride + i]) : row[i];
                z.Write(line);
            }
        }
        WriteChunk(output, "IDAT"u8, raw.GetBuffer().AsSpan(0, (int)raw.Length));
        WriteChunk(output, "IEND"u8, []);
        return output.ToArray();
    }

    /// <summary>Writes a PNG file atomically (temporary name, then rename).</summary>
    public static void Save(string path, ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        var bytes = Encode(pixels, width, height, channels);
        Engine.Serialization.AtomicFile.WriteAllBytes(path, bytes);
    }

    private static void WriteChunk(Stream output, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        output.Write(word);
        output.Write(type);
        output.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.Update(Crc32.Compute(type), data));
        output.Write(word);
    }
}
