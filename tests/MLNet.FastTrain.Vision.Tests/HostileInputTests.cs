using System.Buffers.Binary;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Decoders;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.FastTrain.Vision.Tests;

public class HostileInputTests(ITestOutputHelper log)
{
    public static IEnumerable<object[]> Kinds() =>
        new[] { "png", "jpg", "bmp", "ppm", "pgm" }.Select(k => new object[] { k });

    /// <summary>
    /// Thousands of mutated real files per format: bytes flipped, runs overwritten, cut short, spliced. Each decode
    /// either succeeds or throws InvalidImageException naming the file; nothing else escapes and nothing hangs.
    /// </summary>
    [Theory(Timeout = 300_000)]
    [MemberData(nameof(Kinds))]
    public async Task MutatedFilesOnlyEverThrowInvalidImageException(string kind)
    {
        await Task.Yield();
        var sources = DecoderFixtures.Manifest().Select(m => m.File).Where(f => f.EndsWith("." + kind, StringComparison.Ordinal))
            .Where(f => !f.Contains("astronaut", StringComparison.Ordinal) && !f.Contains("motorcycle", StringComparison.Ordinal)) // keep each decode small
            .Select(f => File.ReadAllBytes(DecoderFixtures.Get(f))).ToList();
        Assert.NotEmpty(sources);
        var random = new Random(20261122);
        int decoded = 0, rejected = 0, unchecked_ = 0;
        const int Mutations = 2000;
        for (int i = 0; i < Mutations; i++)
        {
            var source = sources[i % sources.Count];
            var bytes = Mutate(source, random);
            // PNG's CRCs catch nearly every mutation; re-sealing half the mutants lets them reach the decoder proper.
            if (kind == "png" && i % 2 == 0) FixPngCrcs(bytes);
            try
            {
                var image = ImageDecoder.Decode(bytes, $"mutant-{i}.{kind}");
                Assert.Equal((long)image.Width * image.Height * image.Channels, image.Pixels.LongLength);
                decoded++;
            }
            catch (InvalidImageException e)
            {
                Assert.Equal($"mutant-{i}.{kind}", e.Path);
                rejected++;
                if (e.InnerException is IndexOutOfRangeException or ArgumentException or OverflowException) unchecked_++;
            }
        }
        log.WriteLine($"{kind}: {Mutations} mutants from {sources.Count} files, {decoded} decoded, {rejected} rejected ({unchecked_} caught by the safety net rather than a check)");
        Assert.True(rejected > Mutations / 20, $"only {rejected} of {Mutations} mutants were rejected; the mutations are too gentle to test anything");
    }

    private static void FixPngCrcs(byte[] bytes)
    {
        for (int pos = 8; pos + 12 <= bytes.Length;)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(pos));
            if (pos + 12 + length > bytes.Length) return;
            var body = bytes.AsSpan(pos + 4, 4 + (int)length);
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(pos + 8 + (int)length), Crc32.Compute(body));
            pos += 12 + (int)length;
        }
    }

    private static byte[] Mutate(byte[] source, Random random)
    {
        var bytes = (byte[])source.Clone();
        switch (random.Next(5))
        {
            case 0: // flip a few bytes anywhere
                for (int k = random.Next(1, 8); k > 0; k--) bytes[random.Next(bytes.Length)] ^= (byte)random.Next(1, 256);
                return bytes;
            case 1: // damage the header area, where sizes and tables live
                for (int k = random.Next(1, 4); k > 0; k--) bytes[random.Next(Math.Min(bytes.Length, 700))] = (byte)random.Next(256);
                return bytes;
            case 2: // cut short
                return bytes.AsSpan(0, random.Next(1, bytes.Length)).ToArray();
            case 3: // overwrite a run with random bytes
                {
                    int at = random.Next(bytes.Length), length = Math.Min(random.Next(1, 64), bytes.Length - at);
                    random.NextBytes(bytes.AsSpan(at, length));
                    return bytes;
                }
            default: // splice a copy of one part of the file into another
                {
                    int from = random.Next(bytes.Length), to = random.Next(bytes.Length), length = Math.Min(random.Next(1, 200), bytes.Length - Math.Max(from, to));
                    Array.Copy(source, from, bytes, to, Math.Max(0, length));
                    return bytes;
                }
        }
    }

    [Fact]
    public void WrongMagicEmptyAndRandomBytesAreNamed()
    {
        var random = new byte[1000];
        new Random(1).NextBytes(random);
        // A TIFF is a format we do not read; a GIF signature over garbage is a GIF Skia cannot read.
        foreach (var (bytes, expected) in new[]
        {
            (Array.Empty<byte>(), "empty"), (random, "first bytes"), ("II*\0......"u8.ToArray(), "first bytes"), ("GIF89a......"u8.ToArray(), "truncated"),
        })
        {
            var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(bytes, "photos/cat.jpg"));
            Assert.Equal("photos/cat.jpg", e.Path);
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TruncatedFilesSayTheyAreTruncated()
    {
        foreach (var file in new[] { "chelsea-2x2.jpg", "chelsea-2x2-prog.jpg", "chelsea-rgb8-None.png", "chelsea-24.bmp", "chelsea-8.ppm", "chelsea-rle8.bmp", "chelsea-lossy.webp", "chelsea-lossless.webp", "chelsea.gif" })
        {
            var bytes = File.ReadAllBytes(DecoderFixtures.Get(file));
            var cut = bytes.AsSpan(0, bytes.Length * 3 / 4).ToArray();
            var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(cut, file));
            Assert.True(e.Reason.Contains("truncated", StringComparison.Ordinal), $"{file}: {e.Reason}");
        }
    }

    /// <summary>Absurd dimensions are refused from the header: fast, and without allocating for them.</summary>
    [Fact]
    public void AbsurdDimensionsAreRefusedBeforeAllocating()
    {
        var cases = new (string Name, byte[] Bytes)[]
        {
            ("huge.png", PngHeader(100_000, 100_000)),
            ("tall.png", PngHeader(1, int.MaxValue)),
            ("huge.jpg", JpegHeader(65_000, 65_000)),
            ("bomb.jpg", JpegHeader(8_000, 8_000)),          // within the pixel limit, but the file cannot hold that many blocks
            ("huge.bmp", BmpHeader(70_000, -70_000)),
            ("huge.ppm", "P6\n99999 99999\n255\n"u8.ToArray()),
            ("huge.gif", GifHeader(65_535, 65_535)),
            ("huge.webp", WebPHeader(16_384, 16_384)),
        };
        foreach (var (name, bytes) in cases)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(bytes, name));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(name, e.Path);
            Assert.True(allocated < 1 << 20, $"{name}: {allocated} bytes allocated before refusing");
        }
    }

    private static byte[] PngHeader(uint width, uint height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        var chunk = new byte[12 + 13];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, 13);
        "IHDR"u8.CopyTo(chunk.AsSpan(4));
        ihdr.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(21), Crc32.Update(Crc32.Compute("IHDR"u8), ihdr));
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. chunk, .. new byte[64]];
    }

    private static byte[] JpegHeader(int width, int height) =>
    [
        0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, 3,
        1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, .. new byte[64],
    ];

    /// <summary>A GIF whose screen and only image are width × height, with a 2-colour table and no data.</summary>
    private static byte[] GifHeader(ushort width, ushort height)
    {
        var b = new List<byte>("GIF89a"u8.ToArray());
        b.AddRange(BitConverter.GetBytes(width));
        b.AddRange(BitConverter.GetBytes(height));
        b.AddRange([0x80, 0, 0, 0, 0, 0, 255, 255, 255]);                 // a global table of 2 colours
        b.Add(0x2C);
        b.AddRange([0, 0, 0, 0]);
        b.AddRange(BitConverter.GetBytes(width));
        b.AddRange(BitConverter.GetBytes(height));
        b.AddRange([0, 2, 2, 0x4C, 0x01, 0, 0x3B]);                       // a few LZW bytes, then the trailer
        return [.. b, .. new byte[64]];
    }

    /// <summary>An extended WebP (VP8X) header claiming a width × height canvas, with nothing after it.</summary>
    private static byte[] WebPHeader(int width, int height)
    {
        var b = new byte[30 + 64];
        "RIFF"u8.CopyTo(b);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), b.Length - 8);
        "WEBPVP8X"u8.CopyTo(b.AsSpan(8));
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), 10);
        b[24] = (byte)(width - 1); b[25] = (byte)((width - 1) >> 8); b[26] = (byte)((width - 1) >> 16);
        b[27] = (byte)(height - 1); b[28] = (byte)((height - 1) >> 8); b[29] = (byte)((height - 1) >> 16);
        return b;
    }

    private static byte[] BmpHeader(int width, int height)
    {
        var b = new byte[54 + 64];
        b[0] = (byte)'B';
        b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        return b;
    }

    /// <summary>
    /// A zlib bomb: a 100×100 PNG whose image data inflates to 64 MB. Only the 10,100 bytes the image needs are
    /// inflated; the decoder neither reads on nor allocates for the rest.
    /// </summary>
    [Fact]
    public void PngDecompressionBombStopsAtTheImageSize()
    {
        byte[] compressed;
        using (var buffer = new MemoryStream())
        {
            using (var z = new System.IO.Compression.ZLibStream(buffer, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
            {
                var zeros = new byte[1 << 20];
                for (int i = 0; i < 64; i++) z.Write(zeros);
            }
            compressed = buffer.ToArray();
        }
        var header = PngHeader(100, 100);
        var png = new List<byte>(header.AsSpan(0, 33).ToArray());
        png.AddRange(Chunk("IDAT"u8, compressed));
        png.AddRange(Chunk("IEND"u8, []));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var image = ImageDecoder.Decode([.. png], "bomb.png");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal((100, 100), (image.Width, image.Height));
        Assert.All(image.Pixels, p => Assert.Equal(0, p));
        Assert.True(allocated < 4 << 20, $"{allocated} bytes allocated for a 100×100 image");
    }

    private static byte[] Chunk(ReadOnlySpan<byte> type, byte[] body)
    {
        var chunk = new byte[12 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)body.Length);
        type.CopyTo(chunk.AsSpan(4));
        body.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + body.Length), Crc32.Update(Crc32.Compute(type), body));
        return chunk;
    }

    [Fact]
    public void DamagedPngCrcIsReported()
    {
        var bytes = File.ReadAllBytes(DecoderFixtures.Get("chelsea-rgb8-None.png"));
        bytes[40] ^= 0x55; // inside the first chunk after IHDR
        var e = Assert.Throws<InvalidImageException>(() => ImageDecoder.Decode(bytes, "c.png"));
        Assert.Contains("CRC", e.Reason, StringComparison.Ordinal);
    }
}
