using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace MLNet.FastTrain.TestUtilities;

/// <summary>
/// A tmpfs of a given size mounted on a fresh folder, so that a test can fill a real disk: needs Linux and root
/// (which the CI and the development machines have); unmounted and removed on dispose.
/// </summary>
public sealed class SmallDisk : IDisposable
{
    /// <summary>The mounted folder.</summary>
    public string Path { get; }

    /// <summary>Mounts a tmpfs of <paramref name="bytes"/> (rounded up to whole 4 KB pages).</summary>
    public SmallDisk(long bytes)
    {
        Path = Directory.CreateTempSubdirectory("small-disk-").FullName;
        long kilobytes = (bytes + 4095) / 4096 * 4;
        var (code, said) = Run("mount", "-t", "tmpfs", "-o", string.Create(CultureInfo.InvariantCulture, $"size={kilobytes}k,mode=0755"), "tmpfs", Path);
        if (code != 0)
        {
            Directory.Delete(Path);
            throw new InvalidOperationException($"mount of a {kilobytes} KB tmpfs on {Path} failed ({code}): {said}");
        }
    }

    /// <summary>Why tests that need a small disk cannot run here, or null when they can.</summary>
    public static string? Unavailable =>
        !OperatingSystem.IsLinux() ? "needs Linux (a tmpfs)" : !Environment.IsPrivilegedProcess ? "needs root to mount a tmpfs" : null;

    public void Dispose()
    {
        Run("umount", Path);
        Directory.Delete(Path, recursive: true);
    }

    private static (int Code, string Said) Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string said = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, said);
    }
}

/// <summary>A fact that fills a real disk (<see cref="SmallDisk"/>); skipped, with the reason, where none can be mounted.</summary>
public sealed class SmallDiskFactAttribute : FactAttribute
{
    public SmallDiskFactAttribute()
    {
        if (SmallDisk.Unavailable is { } why) Skip = why;
    }
}
