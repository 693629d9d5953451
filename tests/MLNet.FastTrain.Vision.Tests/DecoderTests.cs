using System.Buffers.Binary;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Decoders;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.FastTrain.Vision.Tests;

public class DecoderTests(ITestOutputHelper log)
{
    public static IEnumerable<object[]> ExactCases() => DecoderFixtures.Cases("exact");

    public static IEnumerable<object[]> JpegCases() => DecoderFixtures.Cases("psnr");

    [Theory]
    [MemberData(nameof(ExactCases))]
    public void LosslessFormatsMatchImageMagickBitForBit(string file, string reference)
    {
        var image = ImageDecoder.Decode(DecoderFixtures.Get(file));
        var expected = ImageDecoder.Decode(DecoderFixtures.Get(reference));
        Assert.Equal((expected.Width, expected.Height), (image.Width, image.Height));
        // ImageMagick writes gray images as gray or RGB depending on the format; compare in the reference's channels.
        var actual = expected.Channels == 3 ? image.WithChannels(3) : image;
        Assert.Equal(expected.Channels, actual.Channels);
        int firstDiff = -1;
        for (int i = 0; i < expected.Pixels.Length; i++)
            if (expected.Pixels[i] != actual.Pixels[i]) { firstDiff = i; break; }
        Assert.True(firstDiff < 0, $"{file}: first difference at byte {firstDiff}: {actual.Pixels[Math.Max(firstDiff, 0)]} vs ImageMagick's {expected.Pixels[Math.Max(firstDiff, 0)]}");
    }

    [Theory]
    [MemberData(nameof(JpegCases))]
    public void ManagedJpegMatchesLibjpegTurbo(string file, string reference)
    {
        var image = JpegDecoder.Decode(File.ReadAllBytes(DecoderFixtures.Get(file)), file);
        DecoderFixtures.AssertClose(image, ImageDecoder.Decode(DecoderFixtures.Get(reference)), 40, file, "djpeg", log);
    }

    public static IEnumerable<object[]> WebPCases() => DecoderFixtures.Cases("webp");

    [Theory]
    [MemberData(nameof(WebPCases))]
    public void LossyWebPMatchesLibwebp(string file, string reference)
    {
        DecoderFixtures.AssertClose(ImageDecoder.Decode(DecoderFixtures.Get(file)), ImageDecoder.Decode(DecoderFixtures.Get(reference)), 40, file, "dwebp", log);
    }

    public static IEnumerable<object[]> CmykCases() => DecoderFixtures.Cases("cmyk");

    [Theory]
    [MemberData(nameof(CmykCases))]
    public void AdobeCmykAndYcckMatchImageMagicksConversion(string file, string reference)
    {
        var bytes = File.ReadAllBytes(DecoderFixtures.Get(file));
        var expected = ImageDecoder.Decode(DecoderFixtures.Get(reference));
        Assert.Equal(3, expected.Channels);
        foreach (var (decoder, image) in new[] { ("managed", JpegDecoder.Decode(bytes, file)), ("Skia", SkiaDecoder.Decode(bytes, file)) })
            DecoderFixtures.AssertClose(image, expected, 40, $"{file} ({decoder})", "ImageMagick's sRGB", log);
    }

    [Fact]
    public void IccProfilesAreIgnoredAndTheStoredSamplesComeOut()
    {
        // A profile-sized blob: the decoders skip it whole, whatever it holds.
        var profile = new byte[3000];
        new Random(3).NextBytes(profile);
        var jpeg = File.ReadAllBytes(DecoderFixtures.Get("chelsea-2x2.jpg"));
        // APP2 "ICC_PROFILE\0", chunk 1 of 1, right after the start-of-image marker.
        byte[] app2 = [0xFF, 0xE2, .. BigEndian16(2 + 14 + profile.Length), .. "ICC_PROFILE\0"u8, 1, 1, .. profile];
        var withIcc = ImageDecoder.Decode([.. jpeg[..2], .. app2, .. jpeg[2..]], "icc.jpg");
        Assert.Equal(ImageDecoder.Decode(jpeg, "plain.jpg").Pixels, withIcc.Pixels);

        var png = File.ReadAllBytes(DecoderFixtures.Get("chelsea-rgb8-None.png"));
        // iCCP after IHDR (8-byte signature, then IHDR's 25 bytes): a name, compression method 0, the "compressed" profile.
        byte[] body = [.. "sRGB\0"u8, 0, .. profile];
        byte[] chunk = [.. BigEndian32(body.Length), .. "iCCP"u8, .. body, .. BigEndian32((int)Crc32.Update(Crc32.Compute("iCCP"u8), body))];
        var pngWithIcc = ImageDecoder.Decode([.. png[..33], .. chunk, .. png[33..]], "icc.png");
        Assert.Equal(ImageDecoder.Decode(png, "plain.png").Pixels, pngWithIcc.Pixels);

        static byte[] BigEndian16(int v) => [(byte)(v >> 8), (byte)v];
        static byte[] BigEndian32(int v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];
    }

    [Theory]
    [MemberData(nameof(JpegCases))]
    public void SkiaJpegMatchesLibjpegTurbo(string file, string reference)
    {
        var image = SkiaDecoder.Decode(File.ReadAllBytes(DecoderFixtures.Get(file)), file);
        DecoderFixtures.AssertClose(image, ImageDecoder.Decode(DecoderFixtures.Get(reference)), 40, $"{file} through Skia", "djpeg", log);
    }

    [Fact]
    public void ExifOrientationIsApplied()
    {
        var path = DecoderFixtures.Get("odd-2x2.jpg");
        foreach (var decoding in new[] { JpegDecoding.Managed, JpegDecoding.Skia })
        foreach (int orientation in new[] { 3, 6, 8 })
        {
            var plain = Decode(File.ReadAllBytes(path), decoding);
            var rotated = Decode(WithOrientation(File.ReadAllBytes(path), orientation), decoding);
            int w = plain.Width, h = plain.Height;
            Assert.Equal(orientation == 3 ? (w, h) : (h, w), (rotated.Width, rotated.Height));
            for (int y = 0; y < rotated.Height; y++)
                for (int x = 0; x < rotated.Width; x++)
                {
                    var (sx, sy) = orientation switch { 3 => (w - 1 - x, h - 1 - y), 6 => (y, h - 1 - x), _ => (w - 1 - y, x) };
                    for (int c = 0; c < 3; c++)
                        Assert.Equal(plain.Pixels[(sy * w + sx) * 3 + c], rotated.Pixels[(y * rotated.Width + x) * 3 + c]);
                }
        }

        static DecodedImage Decode(byte[] jpeg, JpegDecoding decoding) =>
            decoding == JpegDecoding.Skia ? SkiaDecoder.Decode(jpeg, "oriented.jpg") : JpegDecoder.Decode(jpeg, "oriented.jpg");
    }

    /// <summary>Inserts an APP1 Exif segment (big-endian TIFF, one IFD entry: Orientation) after SOI.</summary>
    internal static byte[] WithOrientation(byte[] jpeg, int orientation)
    {
        var tiff = new byte[8 + 2 + 12 + 4];
        "MM"u8.CopyTo(tiff);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(2), 42);
        BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(4), 8);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(10), 0x0112);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(12), 3);
        BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(14), 1);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(18), (ushort)orientation);
        var body = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        var segment = new byte[4 + body.Length];
        segment[0] = 0xFF;
        segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(body.Length + 2));
        body.CopyTo(segment, 4);
        return jpeg.Take(2).Concat(segment).Concat(jpeg.Skip(2)).ToArray();
    }
}

public class SixteenBitGrayTests
{
    public static IEnumerable<object[]> Cases() => DecoderFixtures.Cases("scale16");

    /// <summary>16-bit gray reduced as libpng's png_set_scale_16 does: (v·255 + 32895) >> 16, from the raw samples.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void SixteenBitGrayRoundsAsLibpng(string file, string reference)
    {
        var image = ImageDecoder.Decode(DecoderFixtures.Get(file));
        var pgm = File.ReadAllBytes(DecoderFixtures.Get(reference));
        // Header "P5\n<w> <h>\n65535\n": three lines, then big-endian samples.
        int pos = 0;
        for (int lines = 0; lines < 3; pos++) if (pgm[pos] == '\n') lines++;
        Assert.Equal(image.Width * image.Height, (pgm.Length - pos) / 2);
        Assert.Equal(1, image.Channels);
        for (int i = 0; i < image.Pixels.Length; i++)
        {
            int v = (pgm[pos + 2 * i] << 8) | pgm[pos + 2 * i + 1];
            Assert.Equal((v * 255 + 32895) >> 16, image.Pixels[i]);
        }
    }

    /// <summary>A 4 × 3 BI_RLE8 image with a palette of black, red, green, blue and the given pixel stream.</summary>
    internal static byte[] Rle8Bmp(params byte[] stream)
    {
        var file = new byte[14 + 40 + 16 + stream.Length];
        "BM"u8.CopyTo(file);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(2), file.Length);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(10), 70);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(18), 4);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(22), 3);
        BinaryPrimitives.WriteInt16LittleEndian(file.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(file.AsSpan(28), 8);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(30), 1);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(34), stream.Length);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(46), 4);
        byte[] palette = [0, 0, 0, 0, /* red */ 0, 0, 255, 0, /* green */ 0, 255, 0, 0, /* blue */ 255, 0, 0, 0];
        palette.CopyTo(file, 54);
        stream.CopyTo(file, 70);
        return file;
    }

    [Fact]
    public void RunLengthEscapesMoveEndLinesAndCarryLiterals()
    {
        // Rows bottom-up. Bottom: a run of four reds, end of line. Middle: a move 2 right, two greens, end of line.
        // Top: three literals blue, green, red (padded to even), end of image, so the last pixel is skipped.
        var image = BmpDecoder.Decode(Rle8Bmp(4, 1, 0, 0, 0, 2, 2, 0, 2, 2, 0, 0, 0, 3, 3, 2, 1, 0, 0, 1), "rle.bmp");
        int[] expected = [3, 2, 1, 0, 0, 0, 2, 2, 1, 1, 1, 1];   // palette entries, top row first; skipped pixels take entry 0
        byte[][] colours = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]];
        Assert.Equal(expected.SelectMany(i => colours[i]).ToArray(), image.Pixels);
    }

    [Fact]
    public void RunLengthDataThatOverrunsItsRowsOrEndsEarlyIsRefused()
    {
        var overrun = Assert.Throws<InvalidImageException>(() => BmpDecoder.Decode(Rle8Bmp(0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "rows.bmp"));
        Assert.Contains("past its 3 rows", overrun.Reason, StringComparison.Ordinal);
        // A line that runs far past the width (here 100,000 runs of 255) keeps its first four pixels and drops the rest.
        var longLine = Enumerable.Repeat(new byte[] { 255, 2 }, 100_000).SelectMany(p => p).Concat(new byte[] { 0, 1 }).ToArray();
        var image = BmpDecoder.Decode(Rle8Bmp(longLine), "long.bmp");
        Assert.Equal(new byte[] { 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0 }, image.Pixels[^12..]);
        var cut = Assert.Throws<InvalidImageException>(() => BmpDecoder.Decode(Rle8Bmp(4, 1, 0, 3, 1), "cut.bmp"));
        Assert.Equal("cut.bmp", cut.Path);
        Assert.Contains("truncated", cut.Reason, StringComparison.Ordinal);
    }
}
