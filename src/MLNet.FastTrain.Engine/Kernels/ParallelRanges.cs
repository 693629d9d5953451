namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>
/// Splits [0, count) into one contiguous range per thread (a fixed partition, so results never depend on timing)
/// when there is enough work to pay for the threads.
/// </summary>
internal static class ParallelRanges
{
    /// <summary>Runs <paramref name="body"/>(start, end) over ranges of at least <paramref name="minPerThread"/> items.</summary>
    public static void For(int count, int minPerThread, Action<int, int> body) =>
        For(count, minPerThread, body, static (b, start, end) => b(start, end));

    /// <summary>
    /// Runs <paramref name="body"/>(<paramref name="state"/>, start, end) over ranges of at least
    /// <paramref name="minPerThread"/> items; with a static lambda and a value-tuple state it allocates nothing.
    /// </summary>
    public static void For<TState>(int count, int minPerThread, TState state, Action<TState, int, int> body)
    {
        int threads = Math.Min(EngineSettings.Threads, count / Math.Max(1, minPerThread));
        if (threads <= 1)
        {
            body(state, 0, count);
            return;
        }
        WorkerTeam.Run(threads, (state, body, count, threads), static (s, id) =>
        {
            var (start, end) = Share(s.count, s.threads, id);
            s.body(s.state, start, end);
        });
    }

    /// <summary>Part <paramref name="id"/> of [0, count) cut into <paramref name="parts"/> shares that differ by at most one.</summary>
    public static (int Start, int End) Share(int count, int parts, int id) =>
        ((int)((long)count * id / parts), (int)((long)count * (id + 1) / parts));

    /// <summary>Elements per thread below which an elementwise pass stays on one thread.</summary>
    public const int ElementwiseGrain = 1 << 16;
}
