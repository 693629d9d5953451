using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Decoders;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>What building or reusing a cache did.</summary>
/// <param name="File">The cache file.</param>
/// <param name="Reused">Images found in the cache, not decoded.</param>
/// <param name="Decoded">Images decoded for it (those that failed too: they are listed as skipped, or stop loading).</param>
/// <param name="Notes">What was found and done about it: a cache rebuilt, a damaged tail dropped, a file that changed while read.</param>
public sealed record ImageCacheReport(string File, int Reused, int Decoded, IReadOnlyList<string> Notes);

/// <summary>
/// An on-disk cache of a folder's images decoded and fitted to one size: built once in parallel, then read row by
/// row for training, so that a dataset larger than memory costs only the rows being read.
/// </summary>
/// <remarks>
/// <para>
/// One file per source (folder or CSV), size and channel count, named from them in the cache folder. After a 64-byte
/// header come fixed-size records, each a 40-byte key and the image's C × S × S pixels, so that row r sits at a
/// computed offset and the file is the dataset itself. A record's key is the file's path (a 64-bit hash), length and
/// modification time; an image whose file still has them is not decoded again, so adding ten photos decodes ten.
/// A CRC-32 covers each record.
/// </para>
/// <para>
/// Records are appended in chunks, each flushed before the next is decoded: an interrupted build keeps what it had
/// flushed and resumes from there. A tail that is short or fails its CRC is cut off and said so; a file from another
/// version, or whose header does not match, is rebuilt and said so. A full disk is a
/// <see cref="DiskFullException"/> naming the cache, after the file is cut back to its last whole record, so the
/// cache is as it was before the chunk. Records of files that changed stay in the file, unused, until it is rebuilt.
/// </para>
/// <para>
/// With the channel count left open (null), images are stored as RGB, a gray one with its plane repeated; when every
/// image of the set is gray, the dataset reads the first plane, which is the gray image exactly.
/// </para>
/// <para>
/// Rows are read with positional reads, not mapped: the operating system's page cache serves repeated epochs, and
/// its pages are not counted in the training process's resident memory.
/// </para>
/// </remarks>
public static class ImageCache
{
    /// <summary>The format's version; a file of another version is rebuilt.</summary>
    public const int Version = 1;

    /// <summary>
    /// What decoding and fitting produce, as a number: bumped when they change (decoder, resize), so that a cache of
    /// the old pixels is rebuilt. 1: JPEGs decoded at the smallest DCT scale that keeps twice the size, then area-resized.
    /// </summary>
    internal const int PixelsVersion = 1;

    private const int HeaderSize = 64, KeySize = 40, ChunkPerThread = 32;
    private static ReadOnlySpan<byte> Magic => "FTIMGCACHE\0\0"u8;
    private const uint RecordMagic = 0x52494654; // "FTIR"

    /// <summary>
    /// Loads <paramref name="items"/> through the cache in <paramref name="cacheFolder"/>: reuses the images whose
    /// files are unchanged and decodes, fits and appends the rest (in parallel, flushed chunk by chunk).
    /// </summary>
    /// <param name="cacheFolder">Where cache files live (created if missing).</param>
    /// <param name="source">The folder or CSV the items come from: names the cache file.</param>
    /// <param name="items">Image files and their labels.</param>
    /// <param name="classes">Class names the labels index.</param>
    /// <param name="options">Size, channels, limits and whether undecodable files are skipped.</param>
    /// <param name="progress">Called after each chunk with (images done, images in all); may be null.</param>
    /// <returns>The dataset reading the cache, and the loading report (skipped files; what the cache did).</returns>
    /// <exception cref="InvalidDatasetException">A file is not a decodable image (unless skipped), or none is.</exception>
    /// <exception cref="DiskFullException">The cache's disk filled up; the cache holds what it held before the chunk.</exception>
    public static (ImageDataset Data, ImageLoadReport Report) Load(
        string cacheFolder, string source, IReadOnlyList<(string Path, int Label)> items, IReadOnlyList<string> classes,
        ImageFiles.Options options, Action<int, int>? progress = null)
    {
        var (data, _, report) = Build(cacheFolder, source, items, classes, options, progress);
        return (data, report);
    }

    /// <summary><see cref="Load"/>, also returning which items were kept (indices into <paramref name="items"/>).</summary>
    internal static (ImageDataset Data, int[] Kept, ImageLoadReport Report) Build(
        string cacheFolder, string source, IReadOnlyList<(string Path, int Label)> items, IReadOnlyList<string> classes,
        ImageFiles.Options options, Action<int, int>? progress)
    {
        ArgumentException.ThrowIfNullOrEmpty(cacheFolder);
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(options);
        ImageFiles.CheckOptions(options);
        if (items.Count == 0) throw new InvalidDatasetException(source, "it lists no images.");
        Directory.CreateDirectory(cacheFolder);
        int size = options.Size, stored = options.Channels ?? 3;
        var header = Header(size, stored);
        string path = Path.Combine(cacheFolder, FileName(source, size, options.Channels));
        var notes = new List<string>();
        int recordSize = KeySize + stored * size * size;

        // Unbuffered: each record is one write, so that after a failed one the file can be cut back without a
        // buffer left to flush.
        using var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        // The source channel count of every row, read while checking the records and kept as rows are appended.
        var (known, rowChannels) = Open(file, path, header, recordSize, notes);

        // Which items the cache already holds, by their files' present length and time.
        var keys = new (ulong Hash, long Length, long Time)?[items.Count];
        var row = new long[items.Count];
        var errors = new string?[items.Count];
        var missing = new List<int>();
        for (int i = 0; i < items.Count; i++)
        {
            keys[i] = Stat(items[i].Path, out errors[i]);
            if (keys[i] is { } key && known.TryGetValue(key, out long r)) row[i] = r;
            else if (errors[i] is null) missing.Add(i);
        }
        int reused = items.Count - missing.Count - errors.Count(e => e is not null);

        // Decode what is missing, a chunk at a time, and append it; each chunk flushed before the next.
        int chunk = ChunkPerThread * Environment.ProcessorCount, done = reused;
        var record = new byte[recordSize];
        for (int start = 0; start < missing.Count; start += chunk)
        {
            var part = missing.GetRange(start, Math.Min(chunk, missing.Count - start));
            var pixels = new byte[]?[part.Count];
            Parallel.For(0, part.Count, k =>
            {
                int i = part[k];
                try
                {
                    pixels[k] = ImageFiles.DecodeAndFit(items[i].Path, size, options.Channels, options.Limits);
                    // A file that changed while it was read is used as read, but not kept: the key would not match it.
                    if (Stat(items[i].Path, out _) != keys[i]) keys[i] = null;
                }
                catch (Exception e) when (ImageFiles.IsUnreadable(e))
                {
                    errors[i] = ImageFiles.Reason(e);
                }
            });
            long good = file.Length;
            try
            {
                file.Seek(0, SeekOrigin.End);
                for (int k = 0; k < part.Count; k++)
                {
                    int i = part[k];
                    if (pixels[k] is not { } image) continue;
                    if (keys[i] is not { } key)
                    {
                        notes.Add($"'{items[i].Path}' changed while it was read; it will be read again next time.");
                        key = (0, -1, -1);  // a key no file has
                    }
                    byte imageChannels = (byte)(image.Length / (size * size));
                    WriteRecord(record, key, imageChannels, image, size);
                    file.Write(record);
                    row[i] = rowChannels.Count;
                    rowChannels.Add(imageChannels);
                }
                file.Flush(flushToDisk: true);
            }
            catch (IOException e) when (AtomicFile.IsDiskFull(e))
            {
                file.SetLength(good);
                throw new DiskFullException(path, AtomicFile.FreeSpace(path), e);
            }
            done += part.Count;
            progress?.Invoke(done, items.Count);
        }

        // The loading report, and the dataset over the rows of the kept items.
        var (kept, skipped) = ImageFiles.Kept(items, errors, options.SkipInvalid);
        file.Dispose();
        var reader = new Rows(path, recordSize, kept.Select(i => row[i]).ToArray());
        int channels = options.Channels ?? (kept.All(i => rowChannels[(int)row[i]] == 1) ? 1 : 3);
        var data = new ImageDataset(reader, kept.Select(i => items[i].Label).ToArray(), channels, size, classes);
        return (data, kept, new ImageLoadReport(kept.Length, skipped) { Cache = new ImageCacheReport(path, reused, missing.Count, notes) });
    }

    /// <summary>The cache file's name: the source's full path hashed, the size and the channels asked.</summary>
    internal static string FileName(string source, int size, int? channels) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(source)))}-{Hash(Path.GetFullPath(source)):x16}-{size}px-{(channels is int c ? c + "ch" : "auto")}.ftcache");

    private static byte[] Header(int size, int channels)
    {
        var header = new byte[HeaderSize];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), Version);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), PixelsVersion);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(20), size);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(24), channels);
        return header;
    }

    /// <summary>
    /// Checks the header and the records already there: returns the key → row map of the whole records and each
    /// row's source channel count, after cutting off a damaged tail; a file with another header is emptied and started
    /// again. Each step is noted.
    /// </summary>
    private static (Dictionary<(ulong, long, long), long> Known, List<byte> RowChannels) Open(FileStream file, string path, byte[] header, int recordSize, List<string> notes)
    {
        var known = new Dictionary<(ulong, long, long), long>();
        var rowChannels = new List<byte>();
        var found = new byte[HeaderSize];
        if (file.Length >= HeaderSize) file.ReadExactly(found);
        if (file.Length > 0 && !found.AsSpan().SequenceEqual(header))
        {
            notes.Add(found.AsSpan(0, 12).SequenceEqual(Magic)
                ? $"'{path}' was made by another version or with other settings; rebuilt."
                : $"'{path}' is not a cache file of this version; rebuilt.");
            file.SetLength(0);
        }
        if (file.Length == 0)
        {
            file.Write(header);
            file.Flush(flushToDisk: true);
            return (known, rowChannels);
        }
        long whole = (file.Length - HeaderSize) / recordSize;
        var record = new byte[recordSize];
        long r = 0;
        for (; r < whole; r++)
        {
            file.Seek(HeaderSize + r * recordSize, SeekOrigin.Begin);
            file.ReadExactly(record);
            if (BinaryPrimitives.ReadUInt32LittleEndian(record) != RecordMagic
                || BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(4)) != Crc32.Compute(record.AsSpan(8))) break;
            var key = (BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(8)), BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(16)),
                BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(24)));
            known[key] = r;   // a later record of the same file and time wins
            rowChannels.Add(record[32]);
        }
        long end = HeaderSize + r * recordSize;
        if (end != file.Length)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"'{path}' ended in a damaged or unfinished record (an interrupted build); its {r} whole records are kept and the rest rebuilt."));
            file.SetLength(end);
        }
        return (known, rowChannels);
    }

    private static void WriteRecord(byte[] record, (ulong Hash, long Length, long Time) key, byte sourceChannels, byte[] image, int size)
    {
        var pixels = record.AsSpan(KeySize);
        int plane = size * size;
        if (image.Length == pixels.Length) image.CopyTo(pixels);
        else for (int c = 0; c < pixels.Length / plane; c++) image.CopyTo(pixels.Slice(c * plane, plane));   // gray stored as RGB
        BinaryPrimitives.WriteUInt32LittleEndian(record, RecordMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(8), key.Hash);
        BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(16), key.Length);
        BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(24), key.Time);
        record.AsSpan(32, 8).Clear();
        record[32] = sourceChannels;
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), Crc32.Compute(record.AsSpan(8)));
    }

    /// <summary>A file's key (path hash, length, modification time), or null with the reason it cannot be read.</summary>
    private static (ulong, long, long)? Stat(string path, out string? error)
    {
        error = null;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) { error = "the file does not exist (or was removed)."; return null; }
            return (Hash(Path.GetFullPath(path)), info.Length, info.LastWriteTimeUtc.Ticks);
        }
        catch (Exception e) when (ImageFiles.IsUnreadable(e))
        {
            error = ImageFiles.Reason(e);
            return null;
        }
    }

    /// <summary>64-bit FNV-1a of the UTF-8 path: a collision between two paths of one folder is a 1-in-10^9 event at 10^5 files.</summary>
    private static ulong Hash(string text)
    {
        ulong h = 14695981039346656037;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) h = (h ^ b) * 1099511628211;
        return h;
    }

    /// <summary>
    /// Rows of a cache file, read with positional reads: item i of a dataset is row Index[i]. The file is opened for
    /// each read (a few microseconds beside a training step), so a dataset never holds it open.
    /// </summary>
    internal sealed class Rows(string path, int recordSize, long[] index)
    {
        public long[] Index { get; } = index;

        /// <summary>The same file with the rows of the items at <paramref name="items"/>.</summary>
        public Rows Select(IReadOnlyList<int> items) => new(path, recordSize, items.Select(i => Index[i]).ToArray());

        /// <summary>Reads a row's first destination.Length pixel bytes (its first plane alone for a gray set stored as RGB).</summary>
        public void Read(long row, Span<byte> destination)
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            if (RandomAccess.Read(handle, destination, HeaderSize + row * recordSize + KeySize) != destination.Length)
                throw new InvalidDatasetException(path, "the image cache was cut short while a dataset read it (rebuilt or truncated by another process?).");
        }
    }
}
