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
    public unsafe void A_heap_whose_free_part_grows_beyond_the_slack_hands_its_free_pages_back()
    {
        if (!OperatingSystem.IsLinux()) return;
        TorchRuntime.EnsureLoaded();
        Assert.Contains("mmap threshold 32 MiB", TorchRuntime.AllocatorReport, StringComparison.Ordinal);
        const int Blocks = 64, Big = 8 << 20;
        // What earlier tests left free in the heap goes back first: only what this test frees is resident and free.
        TorchRuntime.TrimHeap();
        // 8 MiB blocks (below the 32 MiB mmap threshold: they come from the heap), every page written; every other one
        // is freed and the rest live on, so no freed block but perhaps the last can join the top of the heap, which
        // glibc gives back by itself.
        var blocks = new byte*[Blocks];
        for (int i = 0; i < Blocks; i++)
        {
            blocks[i] = (byte*)NativeMemory.Alloc(Big);
            new Span<byte>(blocks[i], Big).Fill(1);
        }
        var watch = new HeapGrowthWatch(slackBytes: 64L << 20);
        var within = new HeapGrowthWatch(slackBytes: 1L << 40);
        Assert.False(watch.Check()); // the first look sets the baseline, with the blocks live
        Assert.False(within.Check());
        try
        {
            var (_, freeBefore) = TorchRuntime.HeapUsage() ?? throw new InvalidOperationException("glibc without mallinfo2");
            for (int i = 1; i < Blocks; i += 2) NativeMemory.Free(blocks[i]);
            var (_, free) = TorchRuntime.HeapUsage()!.Value;
            long freed = free - freeBefore;
            Assert.True(freed >= Blocks / 2 * (long)Big * 3 / 4, $"{freed >> 20} MiB freed into the heap: the freed blocks stay in it");
            long before = Environment.WorkingSet;

            // Grown within the slack: nothing is done. Beyond it (and beyond half again the free part at the first
            // look, which the trim at the start keeps small): the free pages go back to the kernel, the live blocks stay.
            Assert.True(freed > freeBefore / 2, $"{freed >> 20} MiB freed, {freeBefore >> 20} MiB free before");
            Assert.False(within.Check());
            Assert.True(watch.Check());
            long after = Environment.WorkingSet;
            Assert.True(before - after >= freed / 2, $"resident {before >> 20} MiB before the trim, {after >> 20} MiB after, {freed >> 20} MiB were freed");
            // The free part the trim left is the new baseline: no second trim until it grows again.
            Assert.False(watch.Check());
            Assert.Throws<ArgumentOutOfRangeException>(() => new HeapGrowthWatch(slackBytes: -1));
        }
        finally
        {
            for (int i = 0; i < Blocks; i += 2) NativeMemory.Free(blocks[i]);
        }
    }
}
