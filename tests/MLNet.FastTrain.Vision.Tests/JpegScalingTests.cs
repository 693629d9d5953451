using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Decoders;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.FastTrain.Vision.Tests;

/// <summary>
/// Decoding JPEGs at 1/2, 1/4 and 1/8 of their size in the DCT domain: against libjpeg-turbo's <c>djpeg -scale</c>,
/// against the full decode averaged over the same cells, and as the loader uses it (then fitted to the target size).
/// </summary>
public class JpegScalingTests(ITestOutputHelper log)
{
    public static IEnumerable<object[]> ScaledCases() =>
        new[] { 2, 4, 8 }.SelectMany(n => DecoderFixtures.Cases($"scale{n}").Select(c => new object[] { c[0], c[1], n }));

    /// <summary>The 4:4:4 and gray fixtures: no chroma upsampling, so a reduced decode is the full one area-averaged.</summary>
    public static IEnumerable<object[]> UnsubsampledCases() =>
        DecoderFixtures.Cases("psnr").Select(c => (string)c[0])
            .Where(f => f.Contains("-1x1") || f.Contains("gray") || f.Contains("-q98"))
            .SelectMany(f => new[] { 2, 4, 8 }.Select(n => new object[] { f, n }));

    public static IEnumerable<object[]> PhotoCases() =>
        DecoderFixtures.Cases("psnr").Select(c => (string)c[0]).Where(f => !f.StartsWith("odd", StringComparison.Ordinal))
            .SelectMany(f => new[] { 32, 64 }.SelectMany(s => new[] { JpegDecoding.Managed, JpegDecoding.Skia }.Select(d => new object[] { f, s, d })));

    [Theory]
    [MemberData(nameof(ScaledCases))]
    public void ScaledDecodeMatchesDjpegScale(string file, string reference, int scale)
    {
        var image = JpegDecoder.Decode(File.ReadAllBytes(DecoderFixtures.Get(file)), file, scale: scale);
        // libjpeg-turbo's reduced transforms keep the lowest N×N coefficients; ours average the full transform over
        // N×N cells (a box filter). The two differ most on fine detail at 1/2, least at 1/8 (both are the DC there).
        DecoderFixtures.AssertClose(image, ImageDecoder.Decode(DecoderFixtures.Get(reference)), 30, $"{file} at 1/{scale}", $"djpeg -scale 1/{scale}", log);
    }

    [Theory]
    [MemberData(nameof(ScaledCases))]
    public void SkiaScaledDecodeMatchesDjpegScale(string file, string reference, int scale)
    {
        // The smallest side that makes Skia pick this scale for this file.
        var bytes = File.ReadAllBytes(DecoderFixtures.Get(file));
        var full = JpegDecoder.Decode(bytes, file);
        int side = Math.Min((full.Width + scale - 1) / scale, (full.Height + scale - 1) / scale);
        var image = SkiaDecoder.Decode(bytes, file, minSide: side);
        DecoderFixtures.AssertClose(image, ImageDecoder.Decode(DecoderFixtures.Get(reference)), 40, $"{file} at 1/{scale} through Skia", $"djpeg -scale 1/{scale}", log);
    }

    [Theory]
    [MemberData(nameof(UnsubsampledCases))]
    public void AReducedDecodeIsTheFullDecodeAveragedOverItsCells(string file, int scale)
    {
        var bytes = File.ReadAllBytes(DecoderFixtures.Get(file));
        var full = JpegDecoder.Decode(bytes, file);
        var reduced = JpegDecoder.Decode(bytes, file, scale: scale);
        int c = full.Channels;
        Assert.Equal(((full.Width + scale - 1) / scale, (full.Height + scale - 1) / scale, c), (reduced.Width, reduced.Height, reduced.Channels));
        // Cells wholly inside the image (an edge cell also averages the encoder's padding, which no decode shows).
        // A gray sample is rounded once at full size (before averaging) and once reduced (after): they differ by at
        // most 1. In colour the full decode also rounds Y, Cb and Cr before the colour transform, which multiplies
        // Cb's rounding by up to 1.772: within 2. Clamping full-size ringing to 0–255 moves the rare sample further.
        int bound = c == 1 ? 1 : 2;
        int cellsWide = full.Width / scale, cellsHigh = full.Height / scale, within = 0, total = 0, worst = 0;
        for (int y = 0; y < cellsHigh; y++)
            for (int x = 0; x < cellsWide; x++)
                for (int k = 0; k < c; k++)
                {
                    double sum = 0;
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++) sum += full.Pixels[((y * scale + dy) * full.Width + x * scale + dx) * c + k];
                    int diff = Math.Abs(reduced.Pixels[(y * reduced.Width + x) * c + k] - (int)Math.Round(sum / (scale * scale)));
                    worst = Math.Max(worst, diff);
                    if (diff <= bound) within++;
                    total++;
                }
        double share = (double)within / total;
        log.WriteLine($"{file} at 1/{scale}: {share:P3} of samples within {bound} of the averaged full decode, largest difference {worst}");
        Assert.True(share >= 0.995, $"{file} at 1/{scale}: only {share:P3} of samples within {bound} of the averaged full decode");
    }

    [Theory]
    [MemberData(nameof(PhotoCases))]
    public void FittingAReducedDecodeMatchesFittingTheFullDecode(string file, int size, JpegDecoding decoding)
    {
        // What the loaders do: reduce in the DCT domain to no less than twice the target, then area-resize the window
        // the full-size image would have been cropped to.
        var bytes = File.ReadAllBytes(DecoderFixtures.Get(file));
        DecodedImage Decode(int minSide) =>
            decoding == JpegDecoding.Skia ? SkiaDecoder.Decode(bytes, file, minSide: minSide) : minSide > 0 ? JpegDecoder.DecodeAtLeast(bytes, file, minSide) : JpegDecoder.Decode(bytes, file);
        var full = Decode(0);
        var expected = ImageFiles.Fit(full, size, size);
        var reduced = Decode(2 * size);
        Assert.True(reduced.Reduction > 1 && reduced.Width < full.Width, $"{file}: a {full.Width}×{full.Height} image bound for {size} px was decoded at full size");
        Assert.Equal((full.Width, full.Height), (reduced.SourceWidth, reduced.SourceHeight));
        var actual = ImageFiles.Fit(reduced, size, size);
        double psnr = Psnr(actual, expected);
        // Reducing all the way to the target (no gap) is logged for comparison: the resize's cells then straddle reduced pixels.
        double noGap = Psnr(ImageFiles.Fit(Decode(size), size, size), expected);
        log.WriteLine($"{file} → {size} px via {reduced.Width}×{reduced.Height} ({decoding}): PSNR {psnr:F1} dB against full decode then resize (reduced to the target itself: {noGap:F1} dB)");
        Assert.True(psnr >= 40, $"{file} → {size} px ({decoding}): PSNR {psnr:F1} dB against full decode then resize");

        static double Psnr(byte[] a, byte[] b) => DecoderFixtures.Psnr(new DecodedImage(a.Length, 1, 1, a), new DecodedImage(b.Length, 1, 1, b));
    }

    [Fact]
    public void TheLoadersReduceToTwiceTheTargetWithTheDecoderImageDecoderChooses()
    {
        var path = DecoderFixtures.Get("astronaut-2x2.jpg");
        var loaded = ImageFiles.LoadImage(path, 3, 40, 40);
        var reduced = ImageDecoder.Decode(path, minSide: 80);
        Assert.Equal((128, 128), (reduced.Width, reduced.Height));   // 512 / 4: 1/8 would leave 64 < 80
        Assert.Equal(ImageFiles.Fit(reduced, 40, 40), loaded);
    }

    [Theory]
    [InlineData(64, 64, 64)]    // 512 × 512 → 1/8
    [InlineData(65, 128, 128)]  // 1/8 would leave 64 < 65: 1/4
    [InlineData(256, 256, 256)] // exactly 1/2
    [InlineData(257, 512, 512)] // no scale keeps 257: full size
    [InlineData(0, 512, 512)]   // no minimum: full size
    public void DecodeAtLeastChoosesTheSmallestScaleThatKeepsBothSides(int minSide, int width, int height)
    {
        var image = JpegDecoder.DecodeAtLeast(File.ReadAllBytes(DecoderFixtures.Get("astronaut-2x2.jpg")), "astronaut", minSide);
        Assert.Equal((width, height), (image.Width, image.Height));
    }

    [Fact]
    public void ScalesRoundPartialCellsUpAndFollowTheShorterSide()
    {
        // 123 × 77: 1/8 gives 16 × 10 (both sides rounded up); at least 11 needs 1/4 (31 × 20), at least 21 needs 1/2.
        var bytes = File.ReadAllBytes(DecoderFixtures.Get("odd-2x2.jpg"));
        Assert.Equal((16, 10), Size(JpegDecoder.DecodeAtLeast(bytes, "odd", 10)));
        Assert.Equal((31, 20), Size(JpegDecoder.DecodeAtLeast(bytes, "odd", 11)));
        Assert.Equal((62, 39), Size(JpegDecoder.DecodeAtLeast(bytes, "odd", 21)));
        Assert.Equal((123, 77), Size(JpegDecoder.DecodeAtLeast(bytes, "odd", 40)));
        static (int, int) Size(DecodedImage image) => (image.Width, image.Height);
    }

    [Fact]
    public void ImageDecoderScalesJpegsOnlyAndOtherFormatsStayWhole()
    {
        var jpeg = ImageDecoder.Decode(DecoderFixtures.Get("chelsea-2x1.jpg"), minSide: 40);
        var png = ImageDecoder.Decode(DecoderFixtures.Get("chelsea-rgb8-None.png"), minSide: 40);
        var full = ImageDecoder.Decode(DecoderFixtures.Get("chelsea-2x1.jpg"));
        // 451 × 300: 1/8 would leave 38 rows, so 1/4.
        Assert.Equal(((full.Width + 3) / 4, (full.Height + 3) / 4), (jpeg.Width, jpeg.Height));
        Assert.Equal((full.Width, full.Height), (png.Width, png.Height));
    }

    [Fact]
    public void ExifOrientationTurnsTheReducedImage()
    {
        var bytes = File.ReadAllBytes(DecoderFixtures.Get("odd-2x2.jpg"));
        var plain = JpegDecoder.Decode(bytes, "odd", scale: 2);
        var turned = JpegDecoder.Decode(DecoderTests.WithOrientation(bytes, 6), "odd", scale: 2);
        Assert.Equal((plain.Height, plain.Width), (turned.Width, turned.Height));
        // Orientation 6: output (x, y) comes from stored (y, h − 1 − x).
        for (int y = 0; y < turned.Height; y++)
            for (int x = 0; x < turned.Width; x++)
                Assert.Equal(plain.Pixels[((plain.Height - 1 - x) * plain.Width + y) * 3], turned.Pixels[(y * turned.Width + x) * 3]);
    }

    [Fact]
    public void BadScalesAreRefusedByName()
    {
        var bytes = File.ReadAllBytes(DecoderFixtures.Get("odd-2x2.jpg"));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => JpegDecoder.Decode(bytes, "odd", scale: 3));
        Assert.Equal("scale", e.ParamName);
        Assert.Equal("minSide", Assert.Throws<ArgumentOutOfRangeException>(() => JpegDecoder.DecodeAtLeast(bytes, "odd", -1)).ParamName);
        Assert.Equal("minSide", Assert.Throws<ArgumentOutOfRangeException>(() => ImageDecoder.Decode(bytes, "odd", minSide: -1)).ParamName);
    }

    [Fact]
    public void ATruncatedJpegIsRefusedAtEveryScale()
    {
        var bytes = File.ReadAllBytes(DecoderFixtures.Get("chelsea-2x2.jpg"));
        var cut = bytes[..(bytes.Length / 2)];
        foreach (int scale in new[] { 2, 4, 8 })
        {
            var e = Assert.Throws<InvalidImageException>(() => JpegDecoder.Decode(cut, "cut.jpg", scale: scale));
            Assert.Equal("cut.jpg", e.Path);
        }
    }
}
