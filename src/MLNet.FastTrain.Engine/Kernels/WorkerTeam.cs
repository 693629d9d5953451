namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>
/// Runs the parts of one parallel region on the calling thread and on resident worker threads, which wait for the
/// next region by spinning a little and then sleeping. A training step opens a few hundred short regions; this
/// keeps their start and end to a few microseconds, where a thread-pool loop costs tens and allocates.
/// </summary>
/// <remarks>
/// Part 0 runs on the caller; part i on worker i. Which thread runs a part never changes what it computes, so results
/// stay independent of timing. A region opened while another is running (from inside a part, or from a second
/// thread such as a data loader's) runs on the thread pool instead of waiting for the team.
/// </remarks>
internal static class WorkerTeam
{
    private const int SpinIterations = 20_000;   // roughly 20–50 µs before a waiting worker sleeps

    private static readonly Lock Gate = new();
    private static Worker[] s_workers = [];
    private static int s_busy;

    /// <summary>Runs <paramref name="body"/>(part) for every part in [0, parts) and returns when all have finished.</summary>
    public static void Run(int parts, Action<int> body)
    {
        if (parts <= 1)
        {
            if (parts == 1) body(0);
            return;
        }
        if (Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            // The team is running another region (a data loader's thread and the training thread can both open
            // regions): take the thread pool rather than wait or run the parts one after another.
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, body);
            return;
        }
        try
        {
            var workers = Workers(parts - 1);
            var region = new Region(body, parts - 1);
            for (int i = 0; i < parts - 1; i++) workers[i].Start(region, i + 1);
            Exception? error = null;
            try
            {
                body(0);
            }
            catch (Exception e)
            {
                error = e;
            }
            region.WaitForWorkers();
            error ??= region.Error;
            if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    private static Worker[] Workers(int count)
    {
        var workers = s_workers;
        if (workers.Length >= count) return workers;
        lock (Gate)
        {
            if (s_workers.Length < count)
            {
                var grown = new Worker[count];
                Array.Copy(s_workers, grown, s_workers.Length);
                for (int i = s_workers.Length; i < count; i++) grown[i] = new Worker(i + 1);
                s_workers = grown;
            }
            return s_workers;
        }
    }

    /// <summary>One region's body, and the count of worker parts still running.</summary>
    private sealed class Region(Action<int> body, int workerParts)
    {
        private int _pending = workerParts;

        public Action<int> Body { get; } = body;

        public Exception? Error { get; private set; }

        public void Finished(Exception? error)
        {
            if (error is not null) Error ??= error;
            Interlocked.Decrement(ref _pending);
        }

        public void WaitForWorkers()
        {
            var spinner = new SpinWait();
            while (Volatile.Read(ref _pending) > 0) spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Workers live as long as the process.")]
    private sealed class Worker
    {
        private readonly SemaphoreSlim _wake = new(0);
        private Region? _region;
        private int _part;

        public Worker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"FastTrain worker {index}" };
            thread.Start();
        }

        public void Start(Region region, int part)
        {
            _part = part;
            Volatile.Write(ref _region, region);
            _wake.Release();
        }

        private void Loop()
        {
            while (true)
            {
                // Spin first: the next region usually opens within microseconds.
                for (int i = 0; i < SpinIterations && Volatile.Read(ref _region) is null; i++) Thread.SpinWait(1);
                _wake.Wait();
                var region = Volatile.Read(ref _region)!;
                _region = null;
                Exception? error = null;
                try
                {
                    region.Body(_part);
                }
                catch (Exception e)
                {
                    error = e;
                }
                region.Finished(error);
            }
        }
    }
}
