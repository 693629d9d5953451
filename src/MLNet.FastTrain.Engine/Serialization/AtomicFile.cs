using System.Globalization;
using System.Text;

namespace MLNet.FastTrain.Engine.Serialization;

/// <summary>
/// The disk (or the user's quota) filled up while a file was being written. Nothing was replaced: the file that was
/// at <see cref="Path"/> before, if any, is intact, and no partial file is left behind.
/// </summary>
public sealed class DiskFullException(string path, long? freeBytes, Exception inner)
    : IOException(Describe(path, freeBytes), inner)
{
    /// <summary>The file that could not be written.</summary>
    public string Path { get; } = path;

    /// <summary>The space left on the file's volume after the failed write, when the system says.</summary>
    public long? FreeBytes { get; } = freeBytes;

    private static string Describe(string path, long? free) =>
        string.Create(CultureInfo.InvariantCulture, $"'{path}' could not be written: its disk is full")
        + (free is long f ? string.Create(CultureInfo.InvariantCulture, $" ({f / 1024.0:F0} KB free)") : "")
        + ". Nothing was replaced: the previous file, if there was one, is intact. Free some space or write to another disk.";
}

/// <summary>
/// Writes files so that a reader never sees half of one: the content goes to a temporary file in the same folder,
/// is flushed to the disk, then renamed over the target. A failure at any point (a full disk, a kill) leaves the
/// previous file as it was and removes the temporary one.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes what <paramref name="write"/> puts into the stream to <paramref name="path"/>.</summary>
    /// <exception cref="DiskFullException">The disk or the quota filled up; the previous file is intact.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        string temp = full + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            TryDelete(temp);   // first, so that the space it held counts as free in the message
            throw new DiskFullException(full, FreeSpace(full), e);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>.</summary>
    /// <inheritdoc cref="Write(string, Action{Stream})" path="/exception"/>
    public static void WriteAllBytes(string path, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        Write(path, stream => stream.Write(bytes));
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark.</summary>
    /// <inheritdoc cref="Write(string, Action{Stream})" path="/exception"/>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));
    }

    /// <summary>
    /// Whether an I/O error says the disk or the quota is full. On Linux and macOS .NET reports the errno as the
    /// HResult (ENOSPC 28; EDQUOT 122 on Linux, 69 on macOS); on Windows the HResult wraps ERROR_DISK_FULL (112) or
    /// ERROR_HANDLE_DISK_FULL (39).
    /// </summary>
    public static bool IsDiskFull(IOException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        int code = error.HResult;
        if (OperatingSystem.IsWindows()) return (code & 0xFFFF) is 112 or 39 && (code & unchecked((int)0xFFFF0000)) == unchecked((int)0x80070000);
        if (OperatingSystem.IsMacOS()) return code is 28 or 69;
        return code is 28 or 122;
    }

    /// <summary>The free space on the volume of <paramref name="path"/>, when the system says.</summary>
    public static long? FreeSpace(string path)
    {
        try
        {
            string? dir = System.IO.Path.GetDirectoryName(path);
            return dir is null ? null : new DriveInfo(dir).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path)) File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A temporary file that cannot be removed is less harm than hiding the error that brought us here.
        }
    }
}
