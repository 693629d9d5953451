namespace MLNet.FastTrain.TorchSharp;

/// <summary>
/// Hands the C heap's free pages back to the kernel when the heap's free part has grown by more than half again its
/// size at the watch's first look or its last trim (and by more than a slack). A training step frees its activations
/// and the next one takes the same blocks again, so a steady free part is memory about to be reused: trimming it would
/// only fault it in again, and the resident size would climb back over the next epochs as the blocks are reused. A
/// growing one means the blocks freed are not being reused (the heap fragments), and its pages would stay resident.
/// </summary>
/// <param name="slackBytes">The least growth that trims, however small the heap. Default 256 MiB.</param>
public sealed class HeapGrowthWatch(long slackBytes = HeapGrowthWatch.DefaultSlackBytes)
{
    /// <summary>The default least growth that trims: 256 MiB.</summary>
    public const long DefaultSlackBytes = 256L << 20;

    private readonly long _slack = slackBytes >= 0 ? slackBytes : throw new ArgumentOutOfRangeException(nameof(slackBytes), slackBytes, "The slack must be zero or more.");
    private long _baseline = -1;

    /// <summary>
    /// Looks at the heap (glibc's <c>mallinfo2</c>, which walks its free lists: call it every few steps, not every
    /// step) and trims when its free part exceeds the baseline by more than half the baseline and by more than the
    /// slack; the free part then becomes the baseline. The first look only sets the baseline.
    /// </summary>
    /// <returns>Whether it trimmed; always false off glibc.</returns>
    public bool Check()
    {
        if (TorchRuntime.HeapUsage() is not var (_, free)) return false;
        if (_baseline < 0)
        {
            _baseline = free;
            return false;
        }
        if (free <= _baseline + Math.Max(_slack, _baseline / 2)) return false;
        _baseline = free;
        return TorchRuntime.TrimHeap();
    }
}
