using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>What <c>--data</c> names: an IDX folder, an image folder, a CSV of path,label, or (absent) the bundled set.</summary>
internal static class DataSource
{
    public const string Description =
        "an IDX folder, an image folder (one sub-folder per class, optionally under train/ and valid/), or a CSV of path,label; default: $FASTTRAIN_DATA, else the full Fashion-MNIST when Debian's dataset-fashion-mnist is installed, else the bundled subset";

    /// <summary>The default side images from folders and CSVs are loaded at.</summary>
    public const int DefaultImageSize = 64;

    /// <summary>
    /// Loads training and validation sets. Image files are decoded at <paramref name="size"/> (default 64) with
    /// <paramref name="channels"/> (default: gray when all are gray); IDX images keep their own size. With
    /// <paramref name="cache"/> (<c>--cache</c>) image files go through the on-disk cache in that folder.
    /// </summary>
    public static (ImageDataset Train, ImageDataset Valid, string Name) Load(string? data, int? size = null, int? channels = null,
        bool skipInvalid = false, ulong seed = 0, Action<string>? log = null, string? validData = null, string? cache = null)
    {
        if (size is < 1) throw new ArgumentException($"--size must be positive, not {size}.");
        var options = new ImageFiles.Options
        {
            Size = size ?? DefaultImageSize, Channels = channels, SkipInvalid = skipInvalid, Seed = seed, CacheFolder = cache, Progress = Progress(log),
        };
        if (validData is not null) return LoadSeparate(data, validData, options, log);
        if (data is not null && data.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
        {
            if (!File.Exists(data)) throw new FileNotFoundException($"--data '{data}' does not exist.", data);
            var (train, valid, report) = ImageFiles.LoadCsv(data, options);
            Report(report, log);
            return (train, valid, data);
        }
        string folder = CliSupport.DataFolder(data);
        if (IdxDataset.IsIdxFolder(folder))
        {
            var (train, valid) = IdxDataset.Load(folder);
            return (train, valid, folder);
        }
        var (t, v, r) = ImageFiles.LoadFolder(folder, options);
        Report(r, log);
        return (t, v, folder);
    }

    /// <summary>--valid given: all of --data trains (an IDX folder's train part), all of --valid validates (an IDX folder's t10k part).</summary>
    private static (ImageDataset Train, ImageDataset Valid, string Name) LoadSeparate(string? data, string valid, ImageFiles.Options options, Action<string>? log)
    {
        string source = data is not null && data.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? data : CliSupport.DataFolder(data);
        ImageDataset train;
        if (IdxDataset.IsIdxFolder(source)) train = IdxDataset.Load(source).Train;
        else
        {
            var (all, report) = ImageFiles.LoadAll(source, options);
            Report(report, log);
            train = all;
        }
        if (!File.Exists(valid) && !Directory.Exists(valid)) throw new FileNotFoundException($"--valid '{valid}' does not exist.", valid);
        ImageDataset validation;
        if (Directory.Exists(valid) && IdxDataset.IsIdxFolder(valid)) validation = IdxDataset.Load(valid, train.Classes).Valid;
        else
        {
            var sameShape = new ImageFiles.Options
            {
                Size = train.Height, Channels = train.Channels, SkipInvalid = options.SkipInvalid, Limits = options.Limits,
                CacheFolder = options.CacheFolder, Progress = options.Progress,
            };
            var (all, report) = ImageFiles.LoadAll(valid, sameShape, train.Classes);
            Report(report, log);
            validation = all;
        }
        if (validation.Channels != train.Channels || validation.Height != train.Height || validation.Width != train.Width)
            throw new InvalidDataException($"--valid '{valid}' has {validation.Channels}×{validation.Height}×{validation.Width} images, the training data {train.Channels}×{train.Height}×{train.Width}.");
        return (train, validation, source);
    }

    /// <summary>A progress line for each tenth of a cache build (nothing for builds of under 200 images).</summary>
    private static Action<int, int>? Progress(Action<string>? log)
    {
        if (log is null) return null;
        int shown = 0;
        return (done, total) =>
        {
            if (total < 200 || done * 10 / total <= shown) return;
            shown = done * 10 / total;
            log(FormattableString.Invariant($"  image cache: {done}/{total} images ({100.0 * done / total:F0} %)"));
        };
    }

    private static void Report(ImageLoadReport report, Action<string>? log)
    {
        if (log is null) return;
        if (report.Cache is { } cache)
        {
            log($"image cache {cache.File}: {cache.Reused} images reused, {cache.Decoded} decoded");
            foreach (var note in cache.Notes.Take(20)) log($"  {note}");
        }
        if (report.Skipped.Count == 0) return;
        log($"{report.Skipped.Count} file{(report.Skipped.Count == 1 ? "" : "s")} skipped (not decodable images):");
        foreach (var (path, reason) in report.Skipped.Take(20)) log($"  {path}: {reason}");
        if (report.Skipped.Count > 20) log($"  ... and {report.Skipped.Count - 20} more");
    }
}
