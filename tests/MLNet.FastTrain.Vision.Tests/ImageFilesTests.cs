using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Decoders;
using MLNet.FastTrain.Vision.Encoders;
using Xunit;

namespace MLNet.FastTrain.Vision.Tests;

/// <summary>Image folders and CSVs built from the bundled Fashion-MNIST images written out as PNG files.</summary>
public sealed class ImageFilesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("fasttrain-folders-").FullName;
    private readonly (byte[] Images, byte[] Labels, int Count) _mini = FashionMnistMini.Load("train");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Writes the first <paramref name="perClass"/> images of classes 0–2 as PNGs under root/class_k/.</summary>
    private List<(string Path, int Label, int Index)> Write(string root, int perClass, int skip = 0)
    {
        var written = new List<(string, int, int)>();
        var seen = new int[10];
        for (int i = 0; i < _mini.Count; i++)
        {
            int label = _mini.Labels[i];
            if (label > 2 || seen[label]++ < skip || seen[label] > skip + perClass) continue;
            var dir = Path.Combine(root, $"class_{label}");
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, $"img{i:D4}.png");
            PngEncoder.Save(path, _mini.Images.AsSpan(i * 784, 784), 28, 28, 1);
            written.Add((path, label, i));
        }
        return written;
    }

    [Fact]
    public void ClassFoldersSplitBySeededFractionPerClass()
    {
        var written = Write(_root, 10);
        File.WriteAllText(Path.Combine(_root, "class_0", "notes.txt"), "not an image, ignored");
        var options = new ImageFiles.Options { Size = 28, ValidFraction = 0.2, Seed = 4 };
        var (train, valid, report) = ImageFiles.LoadFolder(_root, options);
        Assert.Equal(["class_0", "class_1", "class_2"], train.Classes);
        Assert.Equal(1, train.Channels);
        Assert.Equal((24, 6), (train.Count, valid.Count));
        Assert.Equal(30, report.Loaded);
        Assert.Empty(report.Skipped);
        for (int c = 0; c < 3; c++) Assert.Equal(2, valid.Labels.ToArray().Count(l => l == c));
        // Pixels survive the round trip through PNG exactly, at the native size.
        var all = Enumerable.Range(0, train.Count).Select(i => train.Pixels(i).ToArray()).Concat(Enumerable.Range(0, valid.Count).Select(i => valid.Pixels(i).ToArray())).ToList();
        foreach (var (_, _, index) in written) Assert.Contains(all, p => p.AsSpan().SequenceEqual(_mini.Images.AsSpan(index * 784, 784)));
        var again = ImageFiles.LoadFolder(_root, options);
        Assert.Equal(valid.Labels.ToArray(), again.Valid.Labels.ToArray());
    }

    [Fact]
    public void TrainAndValidSubFoldersAreKept()
    {
        Write(Path.Combine(_root, "train"), 6);
        Write(Path.Combine(_root, "valid"), 2, skip: 6);
        var (train, valid, _) = ImageFiles.LoadFolder(_root, new ImageFiles.Options { Size = 16, Channels = 3 });
        Assert.Equal((18, 6), (train.Count, valid.Count));
        Assert.Equal((3, 16, 16), (train.Channels, train.Height, train.Width));
    }

    [Fact]
    public void ACorruptFileStopsLoadingWithItsNameOrIsSkippedAndReported()
    {
        Write(_root, 5);
        var bad = Path.Combine(_root, "class_1", "zz-broken.png");
        File.WriteAllBytes(bad, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]);
        var e = Assert.Throws<InvalidDatasetException>(() => ImageFiles.LoadFolder(_root, new ImageFiles.Options { Size = 28 }));
        Assert.Equal(bad, e.Path);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        var (train, valid, report) = ImageFiles.LoadFolder(_root, new ImageFiles.Options { Size = 28, SkipInvalid = true });
        Assert.Equal(15, train.Count + valid.Count);
        var (path, reason) = Assert.Single(report.Skipped);
        Assert.Equal(bad, path);
        Assert.Contains("truncated", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void CsvOfPathsAndLabels()
    {
        var written = Write(_root, 4);
        var csv = Path.Combine(_root, "items.csv");
        File.WriteAllLines(csv, ["path,label", .. written.Select(w => $"{Path.GetRelativePath(_root, w.Path)},\"kind {w.Label}\"")]);
        var (train, valid, _) = ImageFiles.LoadCsv(csv, new ImageFiles.Options { Size = 28, ValidFraction = 0.25 });
        Assert.Equal(["kind 0", "kind 1", "kind 2"], train.Classes);
        Assert.Equal(12, train.Count + valid.Count);
        File.AppendAllLines(csv, ["only-a-path.png"]);
        var e = Assert.Throws<InvalidDatasetException>(() => ImageFiles.LoadCsv(csv));
        Assert.Equal(csv, e.Path);
        Assert.Contains("line 14", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFolderWithoutClassFoldersIsNamed()
    {
        var e = Assert.Throws<InvalidDatasetException>(() => ImageFiles.LoadFolder(_root));
        Assert.Equal(_root, e.Path);
        Assert.Contains("class sub-folders", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PhotosAreDecodedAtTheReducedScaleAndAGrayOneAmongColourHasItsPlaneRepeated()
    {
        // Real JPEGs: a 512 × 512 colour photo, a 451 × 300 one and a gray 512 × 512 one, at 32 px: decoded at no less
        // than 64 a side, so 1/8 for the square ones and 1/4 for chelsea.
        var files = new[] { ("astronaut-1x1.jpg", "a"), ("chelsea-2x2-prog.jpg", "a"), ("camera-gray.jpg", "b") };
        foreach (var (file, label) in files)
        {
            Directory.CreateDirectory(Path.Combine(_root, label));
            File.Copy(DecoderFixtures.Get(file), Path.Combine(_root, label, file));
        }
        var (data, report) = ImageFiles.LoadAll(_root, new ImageFiles.Options { Size = 32 });
        Assert.Equal((3, 3, 32), (data.Count, data.Channels, data.Width));
        Assert.Empty(report.Skipped);
        for (int i = 0; i < files.Length; i++)
        {
            var bytes = File.ReadAllBytes(DecoderFixtures.Get(files[i].Item1));
            var reduced = ImageFiles.Fit(ImageDecoder.Decode(bytes, "x", minSide: 64), 32, 32);
            var full = ImageFiles.Fit(ImageDecoder.Decode(bytes, "x"), 32, 32);
            Assert.NotEqual(full, reduced);  // otherwise this test could not tell the two paths apart
            var loaded = data.Pixels(i).ToArray();
            if (reduced.Length == 32 * 32) reduced = [.. reduced, .. reduced, .. reduced];
            Assert.Equal(reduced, loaded);
        }
    }

    [Fact]
    public void LinksAreFollowedButLoopsAndSecondLinksToOneFolderAreNot()
    {
        var a = Path.Combine(_root, "a");
        var b = Path.Combine(_root, "b");
        var elsewhere = Directory.CreateTempSubdirectory("fasttrain-elsewhere-").FullName;
        try
        {
            Directory.CreateDirectory(a);
            Directory.CreateDirectory(b);
            File.Copy(DecoderFixtures.Get("chelsea-2x2.jpg"), Path.Combine(a, "1.jpg"));
            File.Copy(DecoderFixtures.Get("coffee-2x2.jpg"), Path.Combine(b, "1.jpg"));
            File.Copy(DecoderFixtures.Get("odd-2x2.jpg"), Path.Combine(elsewhere, "linked.jpg"));
            Directory.CreateSymbolicLink(Path.Combine(a, "up"), _root);          // a loop: would reach b's images too
            Directory.CreateSymbolicLink(Path.Combine(a, "self"), a);            // a loop onto the folder itself
            Directory.CreateSymbolicLink(Path.Combine(a, "more"), elsewhere);    // followed
            Directory.CreateSymbolicLink(Path.Combine(a, "again"), elsewhere);   // the same folder a second time
            File.CreateSymbolicLink(Path.Combine(b, "2.jpg"), Path.Combine(elsewhere, "linked.jpg"));   // a linked photo
            File.CreateSymbolicLink(Path.Combine(b, "dead.jpg"), Path.Combine(elsewhere, "gone.jpg"));  // a link to nothing

            var underA = ImageFiles.ImagesUnder(a);
            Assert.Equal(2, underA.Count);
            Assert.Contains(Path.Combine(a, "1.jpg"), underA);
            Assert.Single(underA, p => p.EndsWith("linked.jpg", StringComparison.Ordinal));
            Assert.Equal(3, ImageFiles.ImagesUnder(b).Count);

            var e = Assert.Throws<InvalidDatasetException>(() => ImageFiles.LoadAll(_root, new ImageFiles.Options { Size = 16 }));
            Assert.Equal(Path.Combine(b, "dead.jpg"), e.Path);
            var (data, report) = ImageFiles.LoadAll(_root, new ImageFiles.Options { Size = 16, SkipInvalid = true });
            Assert.Equal(4, data.Count);
            Assert.Equal(Path.Combine(b, "dead.jpg"), Assert.Single(report.Skipped).Path);
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public void FitCropsTheCentreOfTheLongerSide()
    {
        // A 6×2 gray image whose columns are 0..5: fitting to 2×2 keeps the centre columns 2 and 3.
        var pixels = new byte[12];
        for (int y = 0; y < 2; y++) for (int x = 0; x < 6; x++) pixels[y * 6 + x] = (byte)(10 * x);
        var fitted = ImageFiles.Fit(new DecodedImage(6, 2, 1, pixels), 2, 2);
        Assert.Equal(new byte[] { 20, 30, 20, 30 }, fitted);
    }
}
