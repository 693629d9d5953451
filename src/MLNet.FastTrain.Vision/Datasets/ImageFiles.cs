using System.Runtime.InteropServices;
using MLNet.FastTrain.Vision.Decoders;
using MLNet.FastTrain.Vision.Transforms;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>What loading image files did: how many loaded, and which were skipped and why.</summary>
public sealed record ImageLoadReport(int Loaded, IReadOnlyList<(string Path, string Reason)> Skipped)
{
    /// <summary>What the on-disk cache did, when one was used (<see cref="ImageFiles.Options.CacheFolder"/>).</summary>
    public ImageCacheReport? Cache { get; init; }
}

/// <summary>
/// Datasets from image files: a folder with one sub-folder per class (Model Builder's layout), optionally split into
/// <c>train</c> and <c>valid</c> (or <c>val</c> / <c>test</c>) sub-folders, or a CSV of <c>path,label</c> lines. Images
/// are decoded in parallel (JPEGs at the smallest DCT scale that keeps twice the target size), brought to the asked
/// channels, and resized to one size (the shorter side to the target, then a centred crop, as fastai's default
/// resize), so the dataset lives in memory as 8-bit pixels at that size.
/// </summary>
public static partial class ImageFiles
{
    /// <summary>Loading settings.</summary>
    public sealed class Options
    {
        /// <summary>Side of the square images the dataset holds. Default 64.</summary>
        public int Size { get; set; } = 64;

        /// <summary>1 (gray) or 3 (RGB); null picks 1 when every image is gray, else 3. Default null.</summary>
        public int? Channels { get; set; }

        /// <summary>The validation fraction split off (per class, seeded) when the data has no validation part. Default 0.2.</summary>
        public double ValidFraction { get; set; } = 0.2;

        /// <summary>Seed of that split. Default 0.</summary>
        public ulong Seed { get; set; }

        /// <summary>
        /// Skip files that cannot be decoded (and report them) instead of stopping at the first with an error naming it.
        /// Default false.
        /// </summary>
        public bool SkipInvalid { get; set; }

        /// <summary>Decoder limits (largest image accepted).</summary>
        public DecoderLimits Limits { get; set; } = DecoderLimits.Default;

        /// <summary>
        /// A folder for an on-disk cache of the fitted images (<see cref="ImageCache"/>): built on the first load,
        /// reused and extended after, and read row by row for training instead of held in memory. Default null: the
        /// dataset is held in memory.
        /// </summary>
        public string? CacheFolder { get; set; }

        /// <summary>Called as images are decoded into the cache, with (done, in all). Default null.</summary>
        public Action<int, int>? Progress { get; set; }
    }

    /// <summary>Whether a path is an image file by its extension.</summary>
    public static bool IsImageFile(string path) => ImageDecoder.Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Loads an image folder: class sub-folders, under train/valid sub-folders or split by a seeded fraction.</summary>
    /// <exception cref="InvalidDatasetException">The folder's layout is unusable, or a file is not a decodable image (unless skipped).</exception>
    public static (ImageDataset Train, ImageDataset Valid, ImageLoadReport Report) LoadFolder(string root, Options? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        options ??= new Options();
        if (!Directory.Exists(root)) throw new InvalidDatasetException(root, "the folder does not exist.");
        string? train = SubFolder(root, "train");
        string? valid = SubFolder(root, "valid") ?? SubFolder(root, "val") ?? SubFolder(root, "test");
        if (train is not null && valid is not null)
        {
            var classes = ClassFolders(train);
            var trainItems = Items(train, classes);
            var validClasses = ClassFolders(valid);
            var unknown = validClasses.Except(classes).ToList();
            if (unknown.Count > 0) throw new InvalidDatasetException(valid, $"its classes {string.Join(", ", unknown)} have no folder under '{train}'.");
            var validItems = Items(valid, classes);
            var all = Load(root, [.. trainItems, .. validItems], classes, options);
            var (trainSet, validSet) = SplitAt(all.Data, all.Origin, trainItems.Count, root);
            return (trainSet, validSet, all.Report);
        }
        var names = ClassFolders(root);
        var items = Items(root, names);
        var loaded = Load(root, items, names, options);
        var (t, v) = StratifiedSplit(loaded.Data, options.ValidFraction, options.Seed, root);
        return (t, v, loaded.Report);
    }

    /// <summary>
    /// Loads every image of a class folder or CSV as one dataset, without splitting (for a separate validation set).
    /// With <paramref name="classes"/>, labels follow that order (a class it lacks is an error); otherwise the
    /// folder's or CSV's own sorted class names.
    /// </summary>
    public static (ImageDataset Data, ImageLoadReport Report) LoadAll(string path, Options? options = null, IReadOnlyList<string>? classes = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new Options();
        List<(string Path, int Label)> items;
        List<string> names;
        if (File.Exists(path) && path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
        {
            var rows = ReadCsv(path);
            names = classes?.ToList() ?? rows.Select(r => r.Label).Distinct().Order(StringComparer.Ordinal).ToList();
            var index = names.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
            var unknown = rows.Select(r => r.Label).Where(l => !index.ContainsKey(l)).Distinct().ToList();
            if (unknown.Count > 0) throw new InvalidDatasetException(path, $"its labels {string.Join(", ", unknown)} are not among the training classes.");
            items = rows.Select(r => (r.Path, index[r.Label])).ToList();
        }
        else
        {
            if (!Directory.Exists(path)) throw new InvalidDatasetException(path, "the folder does not exist.");
            var folders = ClassFolders(path);
            names = classes?.ToList() ?? folders;
            var unknown = folders.Except(names).ToList();
            if (unknown.Count > 0) throw new InvalidDatasetException(path, $"its classes {string.Join(", ", unknown)} are not among the training classes.");
            items = Items(path, names);
        }
        var loaded = Load(path, items, names, options);
        return (loaded.Data, loaded.Report);
    }

    /// <summary>
    /// Loads a CSV of <c>path,label</c> lines (a header line is allowed; paths are relative to the CSV's folder),
    /// split by a seeded fraction. Labels are sorted by name to give the class order.
    /// </summary>
    public static (ImageDataset Train, ImageDataset Valid, ImageLoadReport Report) LoadCsv(string csvPath, Options? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(csvPath);
        options ??= new Options();
        var rows = ReadCsv(csvPath);
        var classes = rows.Select(r => r.Label).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        var loaded = Load(csvPath, rows.Select(r => (r.Path, index[r.Label])).ToList(), classes, options);
        var (t, v) = StratifiedSplit(loaded.Data, options.ValidFraction, options.Seed, csvPath);
        return (t, v, loaded.Report);
    }

    /// <summary>
    /// Decodes one image file and brings it to the given channels and size, as the loaders do: [C, H, W] bytes.
    /// JPEGs are decoded at the smallest DCT scale that keeps both sides at least twice the larger of height and width.
    /// </summary>
    public static byte[] LoadImage(string path, int channels, int height, int width, DecoderLimits? limits = null)
    {
        var image = ImageDecoder.Decode(path, limits, minSide: ReducingGap * Math.Max(height, width)).WithChannels(channels);
        return Fit(image, height, width);
    }

    /// <summary>
    /// Resizes the shorter side to the target and crops the centre: [C, H, W] bytes. A reduced decode
    /// (<see cref="DecodedImage.Reduction"/>) is cropped where the full-size image would be, to the fraction of a pixel.
    /// </summary>
    public static byte[] Fit(DecodedImage image, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(image);
        // The largest centred window with the target's aspect ratio, in the file's pixels.
        int sw = image.SourceWidth, sh = image.SourceHeight;
        double scale = Math.Min((double)sw / width, (double)sh / height);
        int cw = Math.Clamp((int)Math.Round(width * scale), 1, sw), ch = Math.Clamp((int)Math.Round(height * scale), 1, sh);
        int x0 = (sw - cw) / 2, y0 = (sh - ch) / 2;
        var planar = image.ToPlanar();
        int c = image.Channels;
        if (image.Reduction > 1)
        {
            // A reduced pixel covers r × r of the file's: the same window, in reduced pixels.
            double r = image.Reduction;
            var area = new float[c * height * width];
            Resize.Window(planar, c, image.Height, image.Width, y0 / r, x0 / r, ch / r, cw / r, area, height, width);
            return ToBytes(area);
        }
        byte[] window;
        if (cw == image.Width && ch == image.Height)
        {
            window = planar;
        }
        else
        {
            window = new byte[c * ch * cw];
            for (int k = 0; k < c; k++)
                for (int y = 0; y < ch; y++)
                    planar.AsSpan(k * image.Width * image.Height + (y0 + y) * image.Width + x0, cw).CopyTo(window.AsSpan((k * ch + y) * cw, cw));
        }
        if (cw == width && ch == height) return window;
        var resized = new float[c * height * width];
        Resize.Planes(window, c, ch, cw, resized, height, width);
        return ToBytes(resized);
    }

    private static byte[] ToBytes(float[] samples)
    {
        var result = new byte[samples.Length];
        for (int i = 0; i < samples.Length; i++) result[i] = (byte)Math.Clamp((int)MathF.Round(samples[i]), 0, 255);
        return result;
    }

    private static List<(string Path, string Label)> ReadCsv(string csvPath)
    {
        if (!File.Exists(csvPath)) throw new InvalidDatasetException(csvPath, "the file does not exist.");
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var rows = new List<(string Path, string Label)>();
        var lines = File.ReadAllLines(csvPath);
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n].Trim();
            if (line.Length == 0) continue;
            var fields = SplitCsv(line);
            if (fields.Count < 2 || fields[0].Length == 0 || fields[1].Length == 0)
                throw new InvalidDatasetException(csvPath, $"line {n + 1} is not 'path,label': {line}");
            if (rows.Count == 0 && n == FirstDataLine(lines) && !IsImageFile(fields[0])) continue; // a header
            rows.Add((Path.IsPathRooted(fields[0]) ? fields[0] : Path.Combine(baseDir, fields[0]), fields[1]));
        }
        if (rows.Count == 0) throw new InvalidDatasetException(csvPath, "it lists no images.");
        return rows;
    }

    private static int FirstDataLine(string[] lines)
    {
        for (int i = 0; i < lines.Length; i++) if (lines[i].Trim().Length > 0) return i;
        return 0;
    }

    private static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { current.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else current.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(current.ToString().Trim()); current.Clear(); }
            else current.Append(ch);
        }
        fields.Add(current.ToString().Trim());
        return fields;
    }

    private static string? SubFolder(string root, string name) =>
        Directory.EnumerateDirectories(root).FirstOrDefault(d => string.Equals(Path.GetFileName(d), name, StringComparison.OrdinalIgnoreCase));

    private static List<string> ClassFolders(string root)
    {
        var classes = Directory.EnumerateDirectories(root).Select(d => Path.GetFileName(d)!).Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToList();
        if (classes.Count == 0) throw new InvalidDatasetException(root, "it has no class sub-folders (one folder of images per class is expected).");
        return classes;
    }

    /// <summary>
    /// Every image file under a folder, at any depth, in ordinal order of their paths. Links are followed (a linked
    /// photo or folder is read), but each real folder once, and never a link back to the folder or above it (a loop,
    /// which would also reach its siblings: another class's images): two links to one folder add nothing twice. A
    /// link to nothing is listed, and fails when read, like any unreadable file.
    /// </summary>
    /// <exception cref="InvalidDatasetException">A folder under it cannot be read; the message names it.</exception>
    public static IReadOnlyList<string> ImagesUnder(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var files = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push(folder);
        string? top = null;
        while (pending.TryPop(out var dir))
        {
            try
            {
                string real = RealPath(dir);
                top ??= real;
                bool upward = top.StartsWith(real, StringComparison.Ordinal) && (top.Length == real.Length || top[real.Length] == '/' || real == "/");
                if (top != real && upward || !seen.Add(real)) continue;
                files.AddRange(Directory.EnumerateFiles(dir).Where(IsImageFile));
                foreach (var sub in Directory.EnumerateDirectories(dir)) pending.Push(sub);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                throw new InvalidDatasetException(dir, $"the folder cannot be read ({e.Message}).");
            }
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>A folder's path with every link resolved: realpath(3) on Unix; elsewhere the folder's own link target.</summary>
    private static string RealPath(string dir)
    {
        if (OperatingSystem.IsWindows()) return Path.GetFullPath(new DirectoryInfo(dir).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? dir);
        nint resolved = LibcRealPath(dir, 0);
        if (resolved == 0) throw new IOException($"realpath failed (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            return Marshal.PtrToStringUTF8(resolved)!;
        }
        finally
        {
            Marshal.FreeHGlobal(resolved);   // allocated by libc's malloc; FreeHGlobal is libc's free on Unix
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint LibcRealPath(string path, nint resolved);

    private static List<(string Path, int Label)> Items(string root, List<string> classes)
    {
        var items = new List<(string, int)>();
        for (int label = 0; label < classes.Count; label++)
        {
            var dir = Path.Combine(root, classes[label]);
            if (!Directory.Exists(dir)) continue;
            foreach (var file in ImagesUnder(dir)) items.Add((file, label));
        }
        if (items.Count == 0) throw new InvalidDatasetException(root, $"its class folders hold no images ({string.Join(", ", ImageDecoder.Extensions)}).");
        return items;
    }

    private sealed record Loaded(ImageDataset Data, int[] Origin, ImageLoadReport Report);

    /// <summary>Loads the items through the on-disk cache when the options name one, else into memory.</summary>
    private static Loaded Load(string source, IReadOnlyList<(string Path, int Label)> items, IReadOnlyList<string> classes, Options options)
    {
        if (options.CacheFolder is null) return Decode(items, classes, options);
        var (data, kept, report) = ImageCache.Build(options.CacheFolder, source, items, classes, options, options.Progress);
        return new Loaded(data, kept, report);
    }

    /// <summary>
    /// Decodes and fits every item in parallel, keeping only the fitted pixels, so memory follows the dataset at its
    /// target size rather than the files' (a folder of 12-megapixel photos is 36 MB an image decoded, 12 kB at 64 px).
    /// JPEGs are decoded at the smallest DCT scale that keeps both sides at least twice the target size. The first failure
    /// (in item order) stops loading unless failures are skipped.
    /// </summary>
    private static Loaded Decode(IReadOnlyList<(string Path, int Label)> items, IReadOnlyList<string> classes, Options options)
    {
        CheckOptions(options);
        int size = options.Size;
        CheckFitsInMemory(items[0].Path, items.Count, (options.Channels ?? 1) * size * size);
        var fitted = new byte[]?[items.Count];
        var errors = new string?[items.Count];
        Parallel.For(0, items.Count, i =>
        {
            try
            {
                fitted[i] = DecodeAndFit(items[i].Path, size, options.Channels, options.Limits);
            }
            catch (Exception e) when (IsUnreadable(e))
            {
                errors[i] = Reason(e);
            }
        });
        var (kept, skipped) = Kept(items, errors, options.SkipInvalid);
        int plane = size * size;
        int channels = options.Channels ?? (kept.All(i => fitted[i]!.Length == plane) ? 1 : 3);
        int bytes = channels * plane;
        CheckFitsInMemory(items[0].Path, kept.Length, bytes);
        var pixels = new byte[kept.Length * bytes];
        var labels = new int[kept.Length];
        Parallel.For(0, kept.Length, k =>
        {
            var source = fitted[kept[k]]!;
            var target = pixels.AsSpan(k * bytes, bytes);
            // A gray image among colour ones: its plane repeated, which is what fitting it as RGB would give (the
            // resize works plane by plane).
            if (source.Length == bytes) source.CopyTo(target);
            else for (int c = 0; c < channels; c++) source.CopyTo(target.Slice(c * plane, plane));
            labels[k] = items[kept[k]].Label;
        });
        return new Loaded(new ImageDataset(pixels, labels, channels, size, size, classes), kept, new ImageLoadReport(kept.Length, skipped));
    }

    /// <summary>
    /// The items that loaded (those without an error) and the skipped ones with their reasons; the first failure, in
    /// item order, is thrown instead unless failures are skipped, and so is a set where nothing loaded.
    /// </summary>
    internal static (int[] Kept, List<(string Path, string Reason)> Skipped) Kept(IReadOnlyList<(string Path, int Label)> items, string?[] errors, bool skipInvalid)
    {
        var skipped = new List<(string, string)>();
        for (int i = 0; i < items.Count; i++)
        {
            if (errors[i] is null) continue;
            if (!skipInvalid)
                throw new InvalidDatasetException(items[i].Path, $"{errors[i]} (set SkipInvalid, or --skip-invalid, to leave such files out and report them).");
            skipped.Add((items[i].Path, errors[i]!));
        }
        var kept = Enumerable.Range(0, items.Count).Where(i => errors[i] is null).ToArray();
        if (kept.Length == 0) throw new InvalidDatasetException(items[0].Path, "no image could be decoded.");
        return (kept, skipped);
    }

    internal static void CheckOptions(Options options)
    {
        if (options.Size < 1) throw new ArgumentOutOfRangeException(nameof(options), $"The image size must be positive, not {options.Size}.");
        if (options.Channels is not (null or 1 or 3)) throw new ArgumentOutOfRangeException(nameof(options), $"Channels must be 1 or 3, not {options.Channels}.");
    }

    /// <summary>An in-memory dataset is one array: beyond its largest length, the on-disk cache is the way.</summary>
    private static void CheckFitsInMemory(string source, int count, int bytesPerImage)
    {
        long total = (long)count * bytesPerImage;
        if (total > Array.MaxLength)
            throw new InvalidDatasetException(source, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"its {count} images take {total / 1e9:F1} GB at this size, more than a dataset held in memory can (2 GB); set CacheFolder (--cache DIR) to read them from an on-disk cache."));
    }

    /// <summary>
    /// How much larger than the target a JPEG's DCT-domain reduction leaves the image before the area resize: 2, as
    /// Pillow's reducing gap. Reducing all the way to the target makes the resize's cells straddle the reduced
    /// pixels, a softer result (34–35 dB against decoding at full size, where 2 gives 40 dB or more:
    /// JpegScalingTests); the entropy decoding, the same at every scale, is most of the cost that remains.
    /// </summary>
    internal const int ReducingGap = 2;

    /// <summary>
    /// A file decoded (a JPEG at the smallest DCT scale that keeps <see cref="ReducingGap"/> × <paramref name="size"/>),
    /// brought to the asked channels (or left as it is) and fitted: [C, size, size] bytes.
    /// </summary>
    internal static byte[] DecodeAndFit(string path, int size, int? channels, DecoderLimits limits)
    {
        var image = ImageDecoder.Decode(path, limits, minSide: ReducingGap * size);
        if (channels is int asked) image = image.WithChannels(asked);
        return Fit(image, size, size);
    }

    /// <summary>
    /// Whether an exception says a listed file cannot be read as an image: not decodable, unreadable, or a path the
    /// file system cannot take (ArgumentException and NotSupportedException: a NUL in it).
    /// </summary>
    internal static bool IsUnreadable(Exception e) =>
        e is InvalidImageException or IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException;

    /// <summary>What a report says of such an exception.</summary>
    internal static string Reason(Exception e) => e is InvalidImageException bad ? bad.Reason : e.Message;

    /// <summary>Items that came from the first <paramref name="firstCount"/> sources go to the first set.</summary>
    private static (ImageDataset, ImageDataset) SplitAt(ImageDataset data, int[] origin, int firstCount, string source)
    {
        var first = Enumerable.Range(0, data.Count).Where(i => origin[i] < firstCount).ToList();
        var second = Enumerable.Range(0, data.Count).Where(i => origin[i] >= firstCount).ToList();
        if (first.Count == 0 || second.Count == 0) throw new InvalidDatasetException(source, "the training or validation part has no decodable images.");
        return (data.Subset(first), data.Subset(second));
    }

    /// <summary>A seeded split per class, so every class is in both parts when it has two or more images.</summary>
    private static (ImageDataset, ImageDataset) StratifiedSplit(ImageDataset data, double fraction, ulong seed, string source)
    {
        if (!(fraction > 0 && fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), $"The validation fraction must be in (0, 1), not {fraction}.");
        var generator = new Engine.Generator(seed);
        var train = new List<int>();
        var valid = new List<int>();
        for (int c = 0; c < data.Classes.Count; c++)
        {
            var members = Enumerable.Range(0, data.Count).Where(i => data.LabelOf(i) == c).ToArray();
            if (members.Length == 0) continue;
            generator.Shuffle<int>(members);
            int v = members.Length < 2 ? 0 : Math.Max(1, (int)Math.Round(members.Length * fraction));
            valid.AddRange(members[..v]);
            train.AddRange(members[v..]);
        }
        if (valid.Count == 0) throw new InvalidDatasetException(source, $"too few images ({data.Count}) to split off a validation set.");
        train.Sort();
        valid.Sort();
        return (data.Subset(train), data.Subset(valid));
    }
}
