using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Decoders;

namespace MLNet.FastTrain.Vision.Tests;

/// <summary>
/// The decoder fixtures tests/images/make_image_fixtures.sh builds from real photographs with libjpeg-turbo and
/// ImageMagick (scripts/test.sh runs it): each file with its reference decode and how to compare the two.
/// </summary>
internal static class DecoderFixtures
{
    public static string Folder => RepoPaths.Get("tests", "images", "generated");

    public static IReadOnlyList<(string File, string Reference, string Compare)> Manifest()
    {
        var path = Path.Combine(Folder, "manifest.tsv");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing: run scripts/test.sh, or bash tests/images/make_image_fixtures.sh tests/images/generated.", path);
        return File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(p => (p[0], p[1], p[2])).ToList();
    }

    public static IEnumerable<object[]> Cases(string compare) =>
        Manifest().Where(m => m.Compare == compare).Select(m => new object[] { m.File, m.Reference });

    public static string Get(string file) => Path.Combine(Folder, file);

    /// <summary>
    /// Asserts that <paramref name="actual"/> has the shape of <paramref name="expected"/> and at least
    /// <paramref name="minDb"/> of PSNR against it; logs "what: PSNR … dB against …, largest difference …".
    /// </summary>
    public static void AssertClose(DecodedImage actual, DecodedImage expected, double minDb, string what, string against, Xunit.Abstractions.ITestOutputHelper log)
    {
        Xunit.Assert.Equal((expected.Width, expected.Height, expected.Channels), (actual.Width, actual.Height, actual.Channels));
        double psnr = Psnr(actual, expected);
        int largest = actual.Pixels.Zip(expected.Pixels).Max(p => Math.Abs(p.First - p.Second));
        log.WriteLine($"{what}: PSNR {psnr:F1} dB against {against}, largest difference {largest}");
        Xunit.Assert.True(psnr >= minDb, $"{what}: PSNR {psnr:F1} dB against {against}");
    }

    /// <summary>Peak signal-to-noise ratio of two 8-bit images of the same shape, in dB (infinity when equal).</summary>
    public static double Psnr(DecodedImage a, DecodedImage b)
    {
        double sum = 0;
        for (int i = 0; i < a.Pixels.Length; i++)
        {
            double d = a.Pixels[i] - b.Pixels[i];
            sum += d * d;
        }
        double mse = sum / a.Pixels.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }
}
