namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>
/// Runs the parts of one parallel region on the calling thread and on resident worker threads, which wait for the
/// next region by spinning a little and then sleeping. A training step opens a few hundred short regions; this
/// keeps their start and end to a few microseconds, where a thread-pool loop costs tens and allocates.
/// </summary>
/// <remarks>
/// Part 0 runs on the caller; part i on worker i. Which thread runs a part never changes what it computes, so results
/// stay independent of timing. A region opened while another is running (from inside a part, or from a second
/// thread such as a data loader's) runs its parts one after another on its own thread: the team's threads already
/// fill the cores, waiting could deadlock a region opened from inside a part, and the thread pool would allocate
/// (its closures and loop state, some hundreds of bytes a region, tens of kilobytes a training step).
/// </remarks>
internal static class WorkerTeam
{
    private const int SpinIterations = 20_000;   // roughly 20–50 µs before a waiting worker sleeps

    private static readonly Lock Gate = new();
    private static Worker[] s_workers = [];
    private static int s_busy;

    /// <summary>Runs <paramref name="body"/>(part) for every part in [0, parts) and returns when all have finished.</summary>
    public static void Run(int parts, Action<int> body) => Run(parts, body, static (b, part) => b(part));

    /// <summary>
    /// Runs <paramref name="body"/>(<paramref name="state"/>, part) for every part in [0, parts) and returns when all
    /// have finished. With a static lambda and a value-tuple state this allocates nothing: the state waits for the
    /// workers in a static slot of its own type, and the region's bookkeeping is reused.
    /// </summary>
    public static void Run<TState>(int parts, TState state, Action<TState, int> body)
    {
        if (parts <= 1)
        {
            if (parts == 1) body(state, 0);
            return;
        }
        if (Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            for (int part = 0; part < parts; part++) body(state, part);
            return;
        }
        try
        {
            var workers = Workers(parts - 1);
            Slot<TState>.State = state;
            Slot<TState>.Body = body;
            unsafe { Region.Begin(&Slot<TState>.Invoke, parts - 1); }
            for (int i = 0; i < parts - 1; i++) workers[i].Start(i + 1);
            Exception? error = null;
            try
            {
                body(state, 0);
            }
            catch (Exception e)
            {
                error = e;
            }
            var workerError = Region.WaitForWorkers();
            error ??= workerError;                                                  // the caller's own error first
            if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        }
        finally
        {
            Slot<TState>.State = default!;                                          // hold no tensors between regions
            Slot<TState>.Body = null;
            Volatile.Write(ref s_busy, 0);
        }
    }

    /// <summary>Where a region's state and body wait for the workers; one region runs on the team at a time.</summary>
    private static class Slot<TState>
    {
        public static TState State = default!;
        public static Action<TState, int>? Body;

        public static void Invoke(int part) => Body!(State, part);
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

    /// <summary>The running region: what the workers call, and the count of worker parts still running.</summary>
    private static unsafe class Region
    {
        private static delegate*<int, void> s_invoke;
        private static int s_pending;
        private static Exception? s_error;

        public static void Begin(delegate*<int, void> invoke, int workerParts)
        {
            s_invoke = invoke;
            s_error = null;
            Volatile.Write(ref s_pending, workerParts);
        }

        public static void RunPart(int part)
        {
            Exception? error = null;
            try
            {
                s_invoke(part);
            }
            catch (Exception e)
            {
                error = e;
            }
            if (error is not null) Interlocked.CompareExchange(ref s_error, error, null);
            Interlocked.Decrement(ref s_pending);
        }

        /// <summary>Waits until every worker part has finished and returns the first error one of them threw.</summary>
        public static Exception? WaitForWorkers()
        {
            var spinner = new SpinWait();
            while (Volatile.Read(ref s_pending) > 0) spinner.SpinOnce(sleep1Threshold: -1);
            return s_error;
        }
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Workers live as long as the process.")]
    private sealed class Worker
    {
        private readonly SemaphoreSlim _wake = new(0);
        private int _part;                                                          // 0 while idle

        public Worker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"FastTrain worker {index}" };
            thread.Start();
        }

        public void Start(int part)
        {
            Volatile.Write(ref _part, part);
            _wake.Release();
        }

        private void Loop()
        {
            while (true)
            {
                // Spin first: the next region usually opens within microseconds.
                for (int i = 0; i < SpinIterations && Volatile.Read(ref _part) == 0; i++) Thread.SpinWait(1);
                _wake.Wait();
                int part = _part;
                _part = 0;
                Region.RunPart(part);
            }
        }
    }
}
