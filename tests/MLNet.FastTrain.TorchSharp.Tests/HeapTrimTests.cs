using System.Runtime.InteropServices;
using MLNet.FastTrain.TorchSharp;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>Run alone: other tests' allocations would move the heap's figures under these.</summary>
[CollectionDefinition(nameof(HeapTrimTests), DisableParallelization = true)]
public sealed class HeapTrimTestsRunAlone;

/// <summary>The C heap under libtorch's allocator settings: fragmentation is measured and its free pages handed back.</summary>
[Collection(nameof(HeapTrimTests))]
public sealed class HeapTrimTests
{
    [Fact]
    public unsafe void A_heap_holding_more_free_memory_than_live_hands_its_free_pages_back()
    {
        if (!OperatingSystem.IsLinux()) return;
        TorchRuntime.EnsureLoaded();
        Assert.Contains("mmap threshold 32 MiB", TorchRuntime.AllocatorReport, StringComparison.Ordinal);
        const int Blocks = 64, Big = 8 << 20;
        // What earlier tests left free in the heap goes back first: only what this test frees is resident and free.
        TorchRuntime.TrimHeap();
        // 8 MiB blocks (below the 32 MiB mmap threshold: they come from the heap), each followed by a small block that
        // lives on, as libtorch's activations lie among small long-lived allocations; every page is written.
        var big = new byte*[Blocks];
        var small = new byte*[Blocks];
        for (int i = 0; i < Blocks; i++)
        {
            big[i] = (byte*)NativeMemory.Alloc(Big);
            new Span<byte>(big[i], Big).Fill(1);
            small[i] = (byte*)NativeMemory.Alloc(256);
        }
        try
        {
            var (_, freeBefore) = TorchRuntime.HeapUsage() ?? throw new InvalidOperationException("glibc without mallinfo2");
            for (int i = 0; i < Blocks; i++) NativeMemory.Free(big[i]);
            var (inUse, free) = TorchRuntime.HeapUsage()!.Value;
            long freed = free - freeBefore;
            // (glibc gives back what it can at once: a block beside the top of a heap; the rest stays, apart.)
            Assert.True(freed >= Blocks * (long)Big / 4, $"{freed >> 20} MiB freed into the heap: most freed blocks stay in it");
            long before = Environment.WorkingSet;

            // Within the slack: nothing is done.
            Assert.False(TorchRuntime.TrimHeapIfFragmented(slackBytes: free));
            Assert.False(TorchRuntime.TrimHeapIfFragmented(slackBytes: long.MaxValue / 2));
            // Beyond it: the free pages go back to the kernel, the live blocks stay.
            Assert.True(free > inUse + (64L << 20), $"{free >> 20} MiB free, {inUse >> 20} MiB in use");
            Assert.True(TorchRuntime.TrimHeapIfFragmented(slackBytes: 64L << 20));
            long after = Environment.WorkingSet;
            Assert.True(before - after >= freed / 2, $"resident {before >> 20} MiB before the trim, {after >> 20} MiB after, {freed >> 20} MiB were freed");
            Assert.Throws<ArgumentOutOfRangeException>(() => TorchRuntime.TrimHeapIfFragmented(slackBytes: -1));
        }
        finally
        {
            for (int i = 0; i < Blocks; i++) NativeMemory.Free(small[i]);
        }
    }
}
