using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;

namespace MLNet.FastTrain.TorchSharp;

/// <summary>libtorch could not be loaded or cannot do what was asked; the message names the package or the device.</summary>
public sealed class TorchEngineException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

/// <summary>
/// The device ran out of memory for a step; the message gives the batch size and how to find one that fits. The
/// learner's state is as it was before the step.
/// </summary>
public sealed class DeviceOutOfMemoryException(string device, int batchSize, string message, Exception? inner = null) : InvalidOperationException(message, inner)
{
    /// <summary>The device: "cpu", "cuda:0", ….</summary>
    public string Device { get; } = device;

    /// <summary>The batch size of the step that failed.</summary>
    public int BatchSize { get; } = batchSize;
}

/// <summary>
/// Loads libtorch for the torch engine: sets OpenMP's wait policy, applies the loader compatibility step where the
/// system's C++ runtime needs it, sets the thread count, and turns TorchSharp's load failures into messages that name
/// the package to reference (docs/design.md §9).
/// </summary>
public static partial class TorchRuntime
{
    private const string NativeLibrary = "libLibTorchSharp.so";
    private static readonly Lock Gate = new();
    private static bool s_loaded;

    /// <summary>Whether libtorch is loaded in this process.</summary>
    public static bool IsLoaded
    {
        get { lock (Gate) return s_loaded; }
    }

    /// <summary>What the compatibility step did in this process (for logs), or null before <see cref="EnsureLoaded"/>.</summary>
    public static string? CompatibilityReport { get; private set; }

    /// <summary>How the C allocator was set for libtorch's tensors in this process (for logs), or null before <see cref="EnsureLoaded"/>.</summary>
    public static string? AllocatorReport { get; private set; }

    /// <summary>
    /// glibc's malloc gives every block above its mmap threshold fresh pages from the kernel and returns them on
    /// free, and trims the heap's top above its trim threshold: a CPU training step of libtorch allocates and frees
    /// activations of a few megabytes each, so with the defaults every step faulted its activations in anew
    /// (11,500 page faults a step for the small ResNet at batch 128, 16 % of its CPU time). Blocks up to 32 MiB
    /// (glibc's largest threshold) come from the heap instead, and up to 128 MiB of free top is kept: 260 faults a
    /// step, the same peak memory (docs/performance.md, "The C allocator under libtorch").
    /// </summary>
    public const int MmapThresholdBytes = 32 << 20, TrimThresholdBytes = 128 << 20;

    /// <summary>
    /// Loads libtorch once per process: OMP_WAIT_POLICY=PASSIVE unless the environment sets it (libtorch's OpenMP
    /// workers otherwise spin while waiting, which measured 5× slower on shared cores), the compatibility step, and
    /// <c>torch.set_num_threads(threads)</c> when <paramref name="threads"/> is given.
    /// </summary>
    /// <exception cref="TorchEngineException">libtorch is missing or cannot be loaded.</exception>
    public static void EnsureLoaded(int? threads = null)
    {
        if (threads is <= 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "The thread count must be positive.");
        lock (Gate)
        {
            if (!s_loaded)
            {
                if (OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null)
                    _ = SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0); // native code reads the C environment, not .NET's copy
                AllocatorReport = TuneAllocator();
                CompatibilityReport = OperatingSystem.IsLinux() ? ApplyCompatibilityStep(FindNativeLibrary()) : "not needed off Linux";
                try
                {
                    torch.InitializeDeviceType(DeviceType.CPU);
                }
                catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException or InvalidOperationException)
                {
                    throw new TorchEngineException(
                        "libtorch could not be loaded. The torch engine needs a libtorch package referenced by the application: "
                        + "TorchSharp-cpu (or libtorch-cpu-linux-x64 2.10.0 beside TorchSharp 0.107.0) for the CPU, or a libtorch-cuda package for a GPU. "
                        + $"Compatibility step: {CompatibilityReport}. TorchSharp said: {Innermost(e).Message}", e);
                }
                s_loaded = true;
            }
            if (threads is int n) torch.set_num_threads(n);
        }
    }

    /// <summary>
    /// The compatibility step on one copy of <c>libLibTorchSharp.so</c>: every symbol version it requires from the
    /// system's libstdc++ that the system's libstdc++ does not define is marked weak, provided the only symbols bound
    /// to it are ones the library never calls at load time (TorchSharp 0.107 needs GLIBCXX_3.4.32, GCC 13, for
    /// <c>std::ios_base_library_init</c> alone; Debian 12 stops at 3.4.30). Returns what it did.
    /// </summary>
    /// <exception cref="TorchEngineException">A missing version binds symbols the library uses, or the file cannot be rewritten.</exception>
    public static string ApplyCompatibilityStep(string? library, string? systemLibStdCxx = null)
    {
        if (library is null || !File.Exists(library)) return $"{NativeLibrary} not found beside the application";
        systemLibStdCxx ??= LoadedLibStdCxx();
        if (systemLibStdCxx is null) return "the system's libstdc++ was not found; nothing changed";
        byte[] image = File.ReadAllBytes(library);
        List<SymbolVersionRequirement> missing;
        try
        {
            var defined = ElfSymbolVersions.Definitions(File.ReadAllBytes(systemLibStdCxx));
            missing = ElfSymbolVersions.Requirements(image)
                .Where(r => r.File.StartsWith("libstdc++", StringComparison.Ordinal) && !r.Weak && !defined.Contains(r.Version)).ToList();
        }
        catch (FormatException e)
        {
            throw new TorchEngineException($"{library} or {systemLibStdCxx} is not a readable ELF shared library ({e.Message}); reinstall the libtorch package.", e);
        }
        if (missing.Count == 0) return $"not needed: {systemLibStdCxx} defines every version {Path.GetFileName(library)} requires";
        var unsafeToWeaken = missing.Where(r => r.Symbols.Any(s => !StartupOnlySymbols.Contains(s))).ToList();
        if (unsafeToWeaken.Count > 0)
            throw new TorchEngineException(string.Create(CultureInfo.InvariantCulture,
                $"{library} needs {string.Join(", ", unsafeToWeaken.Select(r => r.Version))} of libstdc++, which {systemLibStdCxx} lacks, for symbols it uses "
                + $"({string.Join(", ", unsafeToWeaken.SelectMany(r => r.Symbols).Take(5))}). Install a newer libstdc++ (GCC 13 or later) or use the managed engine (--backend managed)."));
        foreach (var r in missing) ElfSymbolVersions.MarkWeak(image, r.Version);
        try
        {
            // A new file renamed over the old one: the build output's copy changes, a hard link into the NuGet cache does not.
            // A temporary file of this process's own: ranks started together by mpirun may all apply the step at once.
            string temp = library + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ".weakver.tmp";
            File.WriteAllBytes(temp, image);
            File.Move(temp, library, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TorchEngineException($"{library} needs {string.Join(", ", missing.Select(r => r.Version))} of libstdc++, which {systemLibStdCxx} lacks, "
                + $"and could not be rewritten to mark them weak ({e.Message}). Make the application's folder writable once, or install libstdc++ from GCC 13 or later.", e);
        }
        return $"marked {string.Join(", ", missing.Select(r => r.Version))} weak in {library} ({systemLibStdCxx} lacks them)";
    }

    // Symbols a library may be loaded without: libstdc++'s iostream initialiser, which GCC 13 emits a reference to
    // in every translation unit that includes <iostream> and which older runtimes run from their own start-up code.
    private static readonly HashSet<string> StartupOnlySymbols = new(StringComparer.Ordinal) { "_ZSt21ios_base_library_initv" };

    /// <summary>Where TorchSharp will load <c>libLibTorchSharp.so</c> from: the application's folder or its runtimes/linux-x64/native.</summary>
    public static string? FindNativeLibrary()
    {
        var folders = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? "" }.Distinct();
        foreach (var folder in folders)
        {
            foreach (var candidate in new[] { Path.Combine(folder, "runtimes", "linux-x64", "native", NativeLibrary), Path.Combine(folder, NativeLibrary) })
                if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>
    /// Whether a CUDA GPU could be usable here, decided without loading libtorch: a CUDA build of libtorch must be
    /// referenced (its <c>libtorch_cuda.so</c> or <c>torch_cuda.dll</c> beside TorchSharp's native library) and the NVIDIA
    /// driver must be installed (on Linux its <c>/proc/driver/nvidia/version</c>, or WSL's <c>/dev/dxg</c>; on Windows
    /// <c>nvcuda.dll</c>). False means no GPU for certain; true means ask libtorch. Loading libtorch only to hear "no"
    /// costs a CPU-only process about 130 MB resident (its code pages and the allocations of its start-up).
    /// </summary>
    public static bool CudaMayBeUsable() => CudaMayBeUsable(NativeFolders(), DriverMarkers());

    /// <summary><see cref="CudaMayBeUsable()"/> over given library folders and driver files (for tests).</summary>
    public static bool CudaMayBeUsable(IEnumerable<string> nativeFolders, IEnumerable<string> driverMarkers)
    {
        ArgumentNullException.ThrowIfNull(nativeFolders);
        ArgumentNullException.ThrowIfNull(driverMarkers);
        bool library = nativeFolders.Any(folder => CudaLibraries.Any(name => File.Exists(Path.Combine(folder, name))));
        return library && driverMarkers.Any(marker => File.Exists(marker) || Directory.Exists(marker));
    }

    private static readonly string[] CudaLibraries = ["libtorch_cuda.so", "torch_cuda.dll"];

    // The folders TorchSharp loads native libraries from: the application's and TorchSharp's, and their runtimes/<rid>/native.
    private static IEnumerable<string> NativeFolders()
    {
        foreach (var folder in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? "" }.Distinct())
        {
            yield return folder;
            yield return Path.Combine(folder, "runtimes", RuntimeInformation.RuntimeIdentifier, "native");
            foreach (var rid in new[] { "linux-x64", "linux-arm64", "win-x64" }) yield return Path.Combine(folder, "runtimes", rid, "native");
        }
    }

    private static IEnumerable<string> DriverMarkers()
    {
        if (OperatingSystem.IsLinux()) return ["/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg"];
        if (OperatingSystem.IsWindows()) return [Path.Combine(Environment.SystemDirectory, "nvcuda.dll")];
        return [];
    }

    /// <summary>The libstdc++ this process has mapped (the .NET runtime links it), which is the one libtorch will get.</summary>
    public static string? LoadedLibStdCxx()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0 && line.AsSpan(slash).Contains("libstdc++.so", StringComparison.Ordinal)) return line[slash..].Trim();
            }
        }
        catch (IOException)
        {
        }
        return null;
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }

    // glibc's mallopt parameters (malloc.h).
    private const int MTrimThreshold = -1, MMmapThreshold = -3;

    /// <summary>Sets glibc's mmap and trim thresholds (<see cref="MmapThresholdBytes"/>) unless the environment sets them.</summary>
    private static string TuneAllocator()
    {
        if (!OperatingSystem.IsLinux()) return "not changed off Linux";
        if (Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null
            || Environment.GetEnvironmentVariable("GLIBC_TUNABLES")?.Contains("malloc.", StringComparison.Ordinal) == true)
            return "left as the environment sets it";
        try
        {
            bool set = MallOpt(MMmapThreshold, MmapThresholdBytes) == 1 & MallOpt(MTrimThreshold, TrimThresholdBytes) == 1;
            return set ? "glibc malloc: mmap threshold 32 MiB, trim threshold 128 MiB" : "glibc refused the thresholds; left as they were";
        }
        catch (EntryPointNotFoundException)
        {
            return "not glibc (no mallopt); left as it is";
        }
    }

    /// <summary>Hands the C heap's free memory back to the kernel (glibc's <c>malloc_trim</c>); false where there is nothing to free or no glibc.</summary>
    public static bool TrimHeap()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return MallocTrim(0) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// The C heap's bytes in use and free (glibc's <c>mallinfo2</c>, over every arena; blocks served by mmap are in
    /// neither), or null off glibc or on one older than 2.33.
    /// </summary>
    public static (long InUse, long Free)? HeapUsage()
    {
        if (!OperatingSystem.IsLinux() || s_noMallInfo) return null;
        try
        {
            var info = MallInfo2();
            return ((long)info.InUse, (long)info.Free);
        }
        catch (EntryPointNotFoundException)
        {
            s_noMallInfo = true;
            return null;
        }
    }

    private static bool s_noMallInfo;

    // glibc's struct mallinfo2 (malloc.h): ten size_t fields.
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct MallInfo2Fields
    {
        public readonly nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, InUse, Free, Keepcost;
    }

    [LibraryImport("libc", EntryPoint = "mallinfo2")]
    private static partial MallInfo2Fields MallInfo2();

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
