namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>
/// Splits [0, count) into one contiguous range per thread (a fixed partition, so results never depend on timing)
/// when there is enough work to pay for the threads.
/// </summary>
internal static class ParallelRanges
{
    /// <summary>Runs <paramref name="body"/>(start, end) over ranges of at least <paramref name="minPerThread"/> items.</summary>
    public static void For(int count, int minPerThread, Action<int, int> body)
    {
        int threads = Math.Min(EngineSettings.Threads, count / Math.Max(1, minPerThread));
        if (threads <= 1)
        {
            body(0, count);
            return;
        }
        WorkerTeam.Run(threads, id =>
            body((int)((long)count * id / threads), (int)((long)count * (id + 1) / threads)));
    }

    /// <summary>Elements per thread below which an elementwise pass stays on one thread.</summary>
    public const int ElementwiseGrain = 1 << 16;
}
