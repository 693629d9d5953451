using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Datasets;
using Xunit;

namespace MLNet.FastTrain.Vision.Tests;

/// <summary>
/// The on-disk image cache over folders of real photographs (the decoder fixtures: JPEGs of every mode, PNGs, a
/// gray JPEG): the same pixels as loading into memory, reuse, additions, changes, interruptions, other versions and a
/// full disk.
/// </summary>
public sealed class ImageCacheTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("fasttrain-cache-").FullName;
    private string Photos => Path.Combine(_root, "photos");
    private string CacheFolder => Path.Combine(_root, "cache");

    private static readonly string[] Sources =
    [
        "astronaut-2x2.jpg", "chelsea-1x1-prog.jpg", "coffee-2x1.jpg", "motorcycle_left-q50-rst-prog.jpg", "odd-1x2.jpg",
        "chelsea-rgb8-None.png", "odd-pal16-PNG.png", "camera-gray.jpg", "coffee-rst.jpg", "astronaut-q98.jpg",
    ];

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Copies the sources into two class folders (alternately), under new names from <paramref name="first"/> on.</summary>
    private List<string> Write(IEnumerable<string> sources, int first = 0)
    {
        var written = new List<string>();
        int n = first;
        foreach (var source in sources)
        {
            var dir = Path.Combine(Photos, n % 2 == 0 ? "cats" : "cups");
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, $"p{n++:D3}{Path.GetExtension(source)}");
            File.Copy(DecoderFixtures.Get(source), path);
            written.Add(path);
        }
        return written;
    }

    private ImageFiles.Options Cached(int size = 40, int? channels = null) => new() { Size = size, Channels = channels, CacheFolder = CacheFolder };

    private static void AssertSamePixels(ImageDataset expected, ImageDataset actual)
    {
        Assert.Equal((expected.Count, expected.Channels, expected.Height, expected.Width), (actual.Count, actual.Channels, actual.Height, actual.Width));
        Assert.Equal(expected.Classes, actual.Classes);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected.LabelOf(i), actual.LabelOf(i));
            Assert.True(expected.Pixels(i).SequenceEqual(actual.Pixels(i)), $"item {i} differs");
        }
    }

    [Fact]
    public void ACachedFolderHoldsTheSamePixelsAsOneLoadedIntoMemoryAndIsReusedWholeTheSecondTime()
    {
        Write(Sources);
        var (memTrain, memValid, _) = ImageFiles.LoadFolder(Photos, new ImageFiles.Options { Size = 40 });
        var (train, valid, first) = ImageFiles.LoadFolder(Photos, Cached());
        Assert.True(train.IsOnDisk && valid.IsOnDisk);
        AssertSamePixels(memTrain, train);
        AssertSamePixels(memValid, valid);
        Assert.Equal((0, 10), (first.Cache!.Reused, first.Cache.Decoded));
        var (mean, std) = memTrain.ChannelStatistics();
        var (cachedMean, cachedStd) = train.ChannelStatistics();
        Assert.Equal(mean, cachedMean);
        Assert.Equal(std, cachedStd);

        var (train2, valid2, second) = ImageFiles.LoadFolder(Photos, Cached());
        Assert.Equal((10, 0), (second.Cache!.Reused, second.Cache.Decoded));
        Assert.Empty(second.Cache.Notes);
        AssertSamePixels(memTrain, train2);
        AssertSamePixels(memValid, valid2);
    }

    [Fact]
    public void AddedAndChangedFilesAreTheOnlyOnesDecodedAgain()
    {
        var written = Write(Sources);
        ImageFiles.LoadAll(Photos, Cached());
        Write(["chelsea-2x2.jpg", "coffee-gray.jpg"], first: 100);
        File.Copy(DecoderFixtures.Get("odd-2x2.jpg"), written[3], overwrite: true);   // same name, new content and time
        File.SetLastWriteTimeUtc(written[3], DateTime.UtcNow.AddMinutes(1));
        var (data, report) = ImageFiles.LoadAll(Photos, Cached());
        Assert.Equal((9, 3), (report.Cache!.Reused, report.Cache.Decoded));
        var (memory, _) = ImageFiles.LoadAll(Photos, new ImageFiles.Options { Size = 40 });
        AssertSamePixels(memory, data);
    }

    [Fact]
    public void AnInterruptedBuildKeepsItsWholeRecordsAndDecodesTheRest()
    {
        Write(Sources);
        var (_, first) = ImageFiles.LoadAll(Photos, Cached());
        var file = first.Cache!.File;
        long recordSize = (new FileInfo(file).Length - 64) / 10;
        // As if the process died in the middle of writing the eighth record.
        using (var stream = new FileStream(file, FileMode.Open)) stream.SetLength(64 + 7 * recordSize + recordSize / 2);
        var (data, report) = ImageFiles.LoadAll(Photos, Cached());
        Assert.Equal((7, 3), (report.Cache!.Reused, report.Cache.Decoded));
        Assert.Contains(report.Cache.Notes, n => n.Contains("unfinished record", StringComparison.Ordinal) && n.Contains(file, StringComparison.Ordinal));
        AssertSamePixels(ImageFiles.LoadAll(Photos, new ImageFiles.Options { Size = 40 }).Data, data);
        Assert.Equal(64 + 10 * recordSize, new FileInfo(file).Length);
    }

    [Fact]
    public void ADamagedRecordIsCutOffWithTheRecordsAfterIt()
    {
        Write(Sources);
        var file = ImageFiles.LoadAll(Photos, Cached()).Report.Cache!.File;
        long recordSize = (new FileInfo(file).Length - 64) / 10;
        using (var stream = new FileStream(file, FileMode.Open))
        {
            stream.Position = 64 + 8 * recordSize + 100;   // a pixel of the ninth record
            int b = stream.ReadByte();
            stream.Position--;
            stream.WriteByte((byte)(b ^ 0x40));
        }
        var (data, report) = ImageFiles.LoadAll(Photos, Cached());
        Assert.Equal((8, 2), (report.Cache!.Reused, report.Cache.Decoded));
        AssertSamePixels(ImageFiles.LoadAll(Photos, new ImageFiles.Options { Size = 40 }).Data, data);
    }

    [Fact]
    public void ACacheOfAnotherVersionOrNotACacheIsRebuiltAndSaidSo()
    {
        Write(Sources);
        var file = ImageFiles.LoadAll(Photos, Cached()).Report.Cache!.File;
        var bytes = File.ReadAllBytes(file);
        bytes[12] = 99;   // the format's version
        File.WriteAllBytes(file, bytes);
        var report = ImageFiles.LoadAll(Photos, Cached()).Report;
        Assert.Equal((0, 10), (report.Cache!.Reused, report.Cache.Decoded));
        Assert.Contains(report.Cache.Notes, n => n.Contains("another version", StringComparison.Ordinal));

        File.WriteAllText(file, "not a cache");
        report = ImageFiles.LoadAll(Photos, Cached()).Report;
        Assert.Equal(10, report.Cache!.Decoded);
        Assert.Contains(report.Cache.Notes, n => n.Contains("not a cache file", StringComparison.Ordinal));
    }

    [Fact]
    public void SizesAndChannelCountsHaveCachesOfTheirOwn()
    {
        Write(Sources);
        var a = ImageFiles.LoadAll(Photos, Cached(40)).Report.Cache!;
        var b = ImageFiles.LoadAll(Photos, Cached(32)).Report.Cache!;
        var c = ImageFiles.LoadAll(Photos, Cached(40, channels: 1));
        Assert.Equal(3, new[] { a.File, b.File, c.Report.Cache!.File }.Distinct().Count());
        Assert.Equal(10, c.Report.Cache.Decoded);
        AssertSamePixels(ImageFiles.LoadAll(Photos, new ImageFiles.Options { Size = 40, Channels = 1 }).Data, c.Data);
    }

    [Fact]
    public void AGraySetReadsAsGrayAndAGrayImageAmongColourAsItsPlaneRepeated()
    {
        Write(["camera-gray.jpg", "coffee-gray.jpg", "chelsea-gray-prog.jpg"]);
        var (gray, _) = ImageFiles.LoadAll(Photos, Cached());
        Assert.Equal(1, gray.Channels);
        AssertSamePixels(ImageFiles.LoadAll(Photos, new ImageFiles.Options { Size = 40 }).Data, gray);
        Write(["chelsea-2x2.jpg"], first: 3);
        var (mixed, report) = ImageFiles.LoadAll(Photos, Cached());
        Assert.Equal((3, 3, 1), (mixed.Channels, report.Cache!.Reused, report.Cache.Decoded));
        AssertSamePixels(ImageFiles.LoadAll(Photos, new ImageFiles.Options { Size = 40 }).Data, mixed);
    }

    [Fact]
    public void BrokenFilesStopLoadingByNameOrAreSkippedAndNeverCached()
    {
        Write(Sources);
        var bad = Path.Combine(Photos, "cups", "broken.jpg");
        File.WriteAllBytes(bad, File.ReadAllBytes(DecoderFixtures.Get("chelsea-2x2.jpg"))[..500]);
        var e = Assert.Throws<InvalidDatasetException>(() => ImageFiles.LoadAll(Photos, Cached()));
        Assert.Equal(bad, e.Path);
        var options = Cached();
        options.SkipInvalid = true;
        var (data, report) = ImageFiles.LoadAll(Photos, options);
        Assert.Equal(10, data.Count);
        Assert.Equal(bad, Assert.Single(report.Skipped).Path);
        // The records the failed load appended are reused; the broken file is tried again, not cached as broken.
        Assert.Equal((10, 1), (report.Cache!.Reused, report.Cache.Decoded));
    }

    [Fact]
    public void UnicodeFileNamesAreCachedAndFound()
    {
        var dir = Path.Combine(Photos, "кошки 🐈");
        Directory.CreateDirectory(dir);
        foreach (var (source, name) in new[] { ("chelsea-2x2.jpg", "été.jpg"), ("coffee-2x1.jpg", "咖啡.jpg"), ("odd-1x1.jpg", "Ωmega ø.jpg") })
            File.Copy(DecoderFixtures.Get(source), Path.Combine(dir, name));
        Directory.CreateDirectory(Path.Combine(Photos, "other"));
        File.Copy(DecoderFixtures.Get("astronaut-2x2.jpg"), Path.Combine(Photos, "other", "a.jpg"));
        ImageFiles.LoadAll(Photos, Cached());
        var (data, report) = ImageFiles.LoadAll(Photos, Cached());
        Assert.Equal((4, 0), (report.Cache!.Reused, report.Cache.Decoded));
        Assert.Equal(["other", "кошки 🐈"], data.Classes);
    }

    [Fact]
    public void AFileThatChangesWhileTheCacheIsBuiltIsUsedButReadAgainNextTime()
    {
        // More images than one chunk (32 a core), so that a file of the second chunk can change after the first.
        int chunk = 32 * Environment.ProcessorCount;
        var written = Write(Enumerable.Range(0, chunk + 8).Select(i => Sources[i % Sources.Length]));
        var late = written[^1];
        var options = Cached();
        options.Progress = (done, total) =>
        {
            if (done < total) File.SetLastWriteTimeUtc(late, DateTime.UtcNow.AddMinutes(5));
        };
        var (data, report) = ImageFiles.LoadAll(Photos, options);
        Assert.Equal(chunk + 8, data.Count);
        Assert.Contains(report.Cache!.Notes, n => n.Contains(late, StringComparison.Ordinal) && n.Contains("changed while it was read", StringComparison.Ordinal));
        var again = ImageFiles.LoadAll(Photos, Cached()).Report.Cache!;
        Assert.Equal((chunk + 7, 1), (again.Reused, again.Decoded));
    }

    [Fact]
    public void TheLoaderServesTheSameBatchesFromTheCacheAsFromMemory()
    {
        Write(Sources);
        var (memory, _) = ImageFiles.LoadAll(Photos, new ImageFiles.Options { Size = 40 });
        var (cached, _) = ImageFiles.LoadAll(Photos, Cached());
        var a = new DataLoader(memory, 4, shuffle: true, seed: 7).Epoch(1).ToList();
        var b = new DataLoader(cached, 4, shuffle: true, seed: 7).Epoch(1).ToList();
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Labels, b[i].Labels);
            Assert.Equal(a[i].Images.AsSpan().ToArray(), b[i].Images.AsSpan().ToArray());
        }
    }

    [SmallDiskFact]
    public void AFullDiskIsNamedAndTheCacheKeepsWhatItHeld()
    {
        Write(Sources.Take(4));
        using var disk = new SmallDisk(56 * 1024);
        var options = new ImageFiles.Options { Size = 64, CacheFolder = disk.Path };   // 12,328 bytes a record: four fit, five do not
        var first = ImageFiles.LoadAll(Photos, options).Report.Cache!;
        long before = new FileInfo(first.File).Length;
        Write(Sources.Skip(4), first: 4);
        var e = Assert.Throws<DiskFullException>(() => ImageFiles.LoadAll(Photos, options));
        Assert.Equal(first.File, e.Path);
        Assert.Equal(before, new FileInfo(first.File).Length);
        // With the new files gone again, the cache is whole and serves the first four.
        foreach (var file in Directory.EnumerateFiles(Photos, "*", SearchOption.AllDirectories).Where(f => string.CompareOrdinal(Path.GetFileName(f), "p004") >= 0))
            File.Delete(file);
        var again = ImageFiles.LoadAll(Photos, options).Report.Cache!;
        Assert.Equal((4, 0), (again.Reused, again.Decoded));
        Assert.Empty(again.Notes);
    }
}
