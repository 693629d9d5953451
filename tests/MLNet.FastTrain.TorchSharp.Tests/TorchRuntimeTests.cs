using MLNet.FastTrain.TorchSharp;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>Loading libtorch: the ELF reader, and the compatibility step on copies of TorchSharp's native library.</summary>
public sealed class TorchRuntimeTests : IDisposable
{
    private const string Needed = "GLIBCXX_3.4.32";
    private readonly string _dir = Directory.CreateTempSubdirectory("torch-runtime-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // The library as TorchSharp ships it, in the NuGet cache (read only here; the step never writes there).
    private static string Pristine()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"TorchSharp's native library is not at {path}");
        return path;
    }

    private static string SystemLibStdCxx() => TorchRuntime.LoadedLibStdCxx() ?? throw new InvalidOperationException("no libstdc++ mapped in this process");

    private static bool SystemHasNeededVersion() => ElfSymbolVersions.Definitions(File.ReadAllBytes(SystemLibStdCxx())).Contains(Needed);

    [Fact]
    public void TorchSharp_requires_GLIBCXX_3_4_32_for_one_start_up_symbol_only()
    {
        var requirement = Assert.Single(ElfSymbolVersions.Requirements(File.ReadAllBytes(Pristine())), r => r.Version == Needed);
        Assert.Equal("libstdc++.so.6", requirement.File);
        Assert.False(requirement.Weak);
        Assert.Equal(["_ZSt21ios_base_library_initv"], requirement.Symbols);
    }

    [Fact]
    public void The_system_libstdcxx_definitions_are_read()
    {
        var defined = ElfSymbolVersions.Definitions(File.ReadAllBytes(SystemLibStdCxx()));
        Assert.Contains("GLIBCXX_3.4", defined);
        Assert.Contains("CXXABI_1.3", defined);
    }

    [Fact]
    public void The_step_marks_exactly_the_missing_version_weak_and_a_second_run_changes_nothing()
    {
        string copy = Path.Combine(_dir, "libLibTorchSharp.so");
        File.Copy(Pristine(), copy);
        var original = File.ReadAllBytes(copy);

        string report = TorchRuntime.ApplyCompatibilityStep(copy, SystemLibStdCxx());

        var patched = File.ReadAllBytes(copy);
        var requirement = Assert.Single(ElfSymbolVersions.Requirements(patched), r => r.Version == Needed);
        if (SystemHasNeededVersion())
        {
            Assert.StartsWith("not needed", report, StringComparison.Ordinal);
            Assert.Equal(original, patched);
            return;
        }
        Assert.Contains($"marked {Needed} weak", report, StringComparison.Ordinal);
        Assert.True(requirement.Weak);
        Assert.Equal(1, original.Zip(patched).Count(p => p.First != p.Second));   // one flag byte
        Assert.All(ElfSymbolVersions.Requirements(patched).Where(r => r.Version != Needed), r => Assert.False(r.Weak));
        Assert.StartsWith("not needed", TorchRuntime.ApplyCompatibilityStep(copy, SystemLibStdCxx()), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void The_applications_copy_is_patched_and_libtorch_computes()
    {
        TorchRuntime.EnsureLoaded(threads: 1);
        string library = TorchRuntime.FindNativeLibrary() ?? throw new InvalidOperationException("no libLibTorchSharp.so beside the tests");
        Assert.NotEqual(Path.GetFullPath(Pristine()), Path.GetFullPath(library));
        var requirement = Assert.Single(ElfSymbolVersions.Requirements(File.ReadAllBytes(library)), r => r.Version == Needed);
        Assert.Equal(!SystemHasNeededVersion(), requirement.Weak);
        Assert.False(Assert.Single(ElfSymbolVersions.Requirements(File.ReadAllBytes(Pristine())), r => r.Version == Needed).Weak);   // the cache is untouched
        using var a = global::TorchSharp.torch.arange(6, dtype: global::TorchSharp.torch.ScalarType.Float32).reshape(2, 3);
        using var product = a.matmul(a.T);
        Assert.Equal([5f, 14f, 14f, 50f], product.data<float>().ToArray());
        Assert.Equal(1, global::TorchSharp.torch.get_num_threads());
        TorchRuntime.EnsureLoaded(threads: 2);
    }

    [Fact]
    public void A_file_that_is_not_ELF_is_a_clear_error()
    {
        string bogus = Path.Combine(_dir, "libLibTorchSharp.so");
        File.WriteAllText(bogus, "not a shared library");
        var e = Assert.Throws<TorchEngineException>(() => TorchRuntime.ApplyCompatibilityStep(bogus, SystemLibStdCxx()));
        Assert.Contains(bogus, e.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => ElfSymbolVersions.Requirements(new byte[16]));
        var truncated = File.ReadAllBytes(Pristine()).AsSpan(0, 4096).ToArray();
        Assert.Throws<FormatException>(() => ElfSymbolVersions.Requirements(truncated));
    }

    [Fact]
    public void A_missing_library_is_reported_not_thrown()
    {
        Assert.Contains("not found", TorchRuntime.ApplyCompatibilityStep(Path.Combine(_dir, "absent.so")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_GPU_is_possible_only_with_a_CUDA_libtorch_and_the_NVIDIA_driver()
    {
        string native = Directory.CreateDirectory(Path.Combine(_dir, "native")).FullName, driver = Path.Combine(_dir, "nvidia-version");
        Assert.False(TorchRuntime.CudaMayBeUsable([native], [driver]));
        File.WriteAllText(Path.Combine(native, "libtorch_cpu.so"), "");
        File.WriteAllText(driver, "NVRM version: 550");
        Assert.False(TorchRuntime.CudaMayBeUsable([native], [driver]));        // a CPU build of libtorch, a driver
        File.WriteAllText(Path.Combine(native, "libtorch_cuda.so"), "");
        Assert.True(TorchRuntime.CudaMayBeUsable([native], [driver]));         // a CUDA build and a driver: ask libtorch
        File.Delete(driver);
        Assert.False(TorchRuntime.CudaMayBeUsable([native], [driver]));        // a CUDA build, no driver
    }

    [Fact]
    public void This_CPU_only_machine_needs_no_libtorch_load_to_know_there_is_no_GPU()
    {
        // The tests reference the CPU build of libtorch: its folder has no libtorch_cuda.so.
        Assert.False(TorchRuntime.CudaMayBeUsable());
        Assert.False(new TorchEngineProvider().GpuAvailable);
    }

    [Fact]
    public void A_step_s_worth_of_libtorch_tensors_reuses_the_heap_instead_of_faulting_in_fresh_pages()
    {
        TorchRuntime.EnsureLoaded();
        Assert.Contains("mmap threshold 32 MiB", TorchRuntime.AllocatorReport, StringComparison.Ordinal);
        // A training step's pattern: a dozen activations of a few MiB alive at once, all freed at the end. Under
        // glibc's defaults the freed top of the heap (48 MiB) is above the trim threshold (twice the largest block
        // freed so far), so it goes back to the kernel and every step faults it in again.
        const int MiB = 1 << 20, Blocks = 12, Size = 4 * MiB;
        long lastRound = 0;
        for (int round = 0; round < 3; round++)
        {
            long before = ThreadMinorFaults();
            var live = new List<global::TorchSharp.torch.Tensor>();
            for (int i = 0; i < Blocks; i++)
            {
                var t = global::TorchSharp.torch.empty([Size], global::TorchSharp.torch.ScalarType.Byte);
                t.bytes.Fill(1); // written by this thread, so its page faults count here
                live.Add(t);
            }
            foreach (var t in live) t.Dispose();
            lastRound = ThreadMinorFaults() - before;
        }
        // Under the defaults the third round faults in every page again (12,256 of 12,288, measured with the mallopt
        // calls removed); with the thresholds none alone, and 2,048 after the rest of the suite had used the heap.
        long pages = (long)Blocks * Size / Environment.SystemPageSize;
        Assert.True(lastRound < pages / 2, $"{lastRound} page faults in the third round of {Blocks} × 4 MiB tensors ({pages} pages)");
    }

    // getrusage(RUSAGE_THREAD): ru_minflt is the fifth long after the two timevals.
    private static long ThreadMinorFaults()
    {
        Span<long> usage = stackalloc long[18];
        Assert.Equal(0, GetRUsage(1, ref usage[0]));
        return usage[4 + 4];
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetRUsage(int who, ref long usage);
}
