using System.Globalization;
using System.Text;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Tuning;

/// <summary>The batch size chosen for a memory budget, and the arithmetic behind it.</summary>
public sealed record BatchSizeAdvice(
    int BatchSize, long BudgetBytes, long ParameterBytes, long GradientBytes, long OptimizerStateBytes,
    long FixedStepBytes, long BytesPerSample, long EstimatedBytes, long MeasuredStepBytes, string Explanation)
{
    /// <summary>What the process held before training (runtime, code, the data set in memory), counted against the budget.</summary>
    public long BaselineBytes { get; init; }

    /// <summary>The loader's batches in flight (being built, queued and in use) at the chosen batch size.</summary>
    public long LoaderBytes { get; init; }

    /// <summary>What a validation step at its own batch size holds (it runs between training steps, never beside one).</summary>
    public long ValidationStepBytes { get; init; }
}

/// <summary>A memory budget too small for even the smallest batch; says how much is needed.</summary>
public sealed class InsufficientMemoryBudgetException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public InsufficientMemoryBudgetException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public InsufficientMemoryBudgetException() { }

    /// <summary>Creates the exception.</summary>
    public InsufficientMemoryBudgetException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Picks the largest batch size for which the whole process fits a memory budget: what it already holds (the
/// runtime, the code, the data set in memory: its resident size when asked), the model's parameters, their
/// gradients and optimizer state, the loader's batches in flight, and the larger of a training step (measured by
/// probing a step at batch 1 and 2: activations kept for backward grow with the batch, the rest does not) and a
/// validation step at the validation batch size. The model's part gets a margin for the allocator and scratch
/// buffers. The answer is confirmed with one more probe at the chosen size, and explained part by part. A budget
/// that cannot hold one sample is a clear error, never an out-of-memory crash.
/// </summary>
public static class BatchSizeFinder
{
    /// <summary>Settings.</summary>
    public sealed class Options
    {
        /// <summary>The budget; default half of the memory available to the process.</summary>
        public long? MemoryBudgetBytes { get; set; }

        /// <summary>Head-room kept free, as a fraction of the estimate (scratch buffers, the allocator). Default 0.25.</summary>
        public double Margin { get; set; } = 0.25;

        /// <summary>Largest batch considered. Default 1024.</summary>
        public int MaxBatchSize { get; set; } = 1024;

        /// <summary>Optimizer state per parameter, in parameter-sized buffers: SGD with momentum 1, Adam 2 (default).</summary>
        public int OptimizerBuffersPerParameter { get; set; } = 2;

        /// <summary>What the process holds besides training (runtime, code, the data set); null (default): its resident size now.</summary>
        public long? BaselineBytes { get; set; }

        /// <summary>
        /// Kept free for what the runtime adds outside the heap while training (compiled code, threads); null (default):
        /// 5 % of the budget, at least 48 MB, the reserve <see cref="CapManagedHeap"/> keeps too. 0 budgets the model alone.
        /// </summary>
        public long? RuntimeReserveBytes { get; set; }

        /// <summary>Input batches alive at once in the loader: being built, queued (two) and in use, and augmentation's copy. Default 5.</summary>
        public int LoaderBatches { get; set; } = 5;

        /// <summary>The validation loader's batch size, whose forward pass is probed too; 0 skips it. Default 256.</summary>
        public int ValidationBatchSize { get; set; } = 256;
    }

    /// <summary>Finds the batch size for a classifier taking [channels, height, width] images.</summary>
    public static BatchSizeAdvice Find(Module model, (int Channels, int Height, int Width) input, int classes, Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Find(model, (batch, training) => ProbeStep(model, input, classes, batch, training), (1, 2), () => model.StateDict().Clone(), state => model.LoadStateDict(state),
            input, options);
    }

    /// <summary>
    /// As <see cref="Find(Module, ValueTuple{int, int, int}, int, Options?)"/>, with the steps probed on
    /// <paramref name="engine"/> (<see cref="Engines.TrainingEngine.ProbeStepBytes"/>): on the torch engine, what libtorch
    /// allocates. The engine's weights and buffers are put back afterwards.
    /// </summary>
    public static BatchSizeAdvice Find(Engines.TrainingEngine engine, (int Channels, int Height, int Width) input, int classes, Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        return Find(engine.Description, (batch, training) => engine.ProbeStepBytes(batch, input, classes, training), engine.ProbeBatchSizes, engine.ModelState,
            engine.LoadModelState, input, options);
    }

    private static BatchSizeAdvice Find(Module model, Func<int, bool, long> probe, (int Small, int Large) sizes, Func<Engine.Serialization.StateDict> save,
        Action<Engine.Serialization.StateDict> restore, (int Channels, int Height, int Width) input, Options? options)
    {
        options ??= new Options();
        long budget = options.MemoryBudgetBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
        if (budget <= 0) throw new ArgumentOutOfRangeException(nameof(options), $"The memory budget must be positive, not {budget} bytes.");
        if (options.Margin < 0) throw new ArgumentOutOfRangeException(nameof(options), $"The margin must be non-negative, not {options.Margin}.");

        long baseline = options.BaselineBytes ?? Environment.WorkingSet;
        long sampleInput = 4L * input.Channels * input.Height * input.Width;
        long loaderPerSample = sampleInput * Math.Max(0, options.LoaderBatches);
        long parameters = model.Parameters().Sum(p => (long)p.Length * 4);
        long gradients = model.Parameters().Where(p => p.RequiresGrad).Sum(p => (long)p.Length * 4);
        long optimizerState = gradients * options.OptimizerBuffersPerParameter;
        long staticBytes = parameters + gradients + optimizerState;

        var saved = save();   // probing in training mode moves batch-norm statistics
        try
        {
            // A step's memory is fixed + per image × batch: two probes give the line.
            long small = probe(sizes.Small, true);
            long large = probe(sizes.Large, true);
            long perSample = Math.Max(1, (large - small) / (sizes.Large - sizes.Small));
            long fixedStep = Math.Max(0, small - perSample * sizes.Small);
            long validation = options.ValidationBatchSize > 0 ? probe(options.ValidationBatchSize, false) : 0;
            // budget ≥ baseline + (1 + margin)·(static + max(step, validation)) + loader; solved for the batch with
            // the training step as the larger, then checked with the validation step.
            long reserve = options.RuntimeReserveBytes ?? RuntimeReserve(budget);
            double forModel = budget - reserve - baseline;
            double usable = forModel / (1 + options.Margin) - staticBytes - fixedStep;
            long largest = usable <= 0 ? 0 : (long)(usable / (perSample + loaderPerSample / (1 + options.Margin)));
            if ((1 + options.Margin) * (staticBytes + validation) + baseline + reserve > budget) largest = 0;
            // The whole process at a batch whose training step holds stepBytes.
            long Total(long stepBytes, int batchSize) =>
                baseline + reserve + (long)((staticBytes + Math.Max(stepBytes, validation)) * (1 + options.Margin)) + loaderPerSample * batchSize;
            var inv = CultureInfo.InvariantCulture;
            if (largest < 1)
            {
                long needed = Total(fixedStep + perSample, 1);
                throw new InsufficientMemoryBudgetException(string.Create(inv,
                    $"A memory budget of {Mb(budget)} cannot train this model even one image at a time: that needs about {Mb(needed)} " +
                    $"(the process so far {Mb(baseline)}, kept for the runtime's growth {Mb(reserve)}, weights {Mb(parameters)}, gradients {Mb(gradients)}, optimizer state {Mb(optimizerState)}, one image's step {Mb(fixedStep + perSample)}, " +
                    $"a validation step {Mb(validation)}, margin {options.Margin:P0}). Raise the budget or use a smaller model or image size."));
            }
            int batch = (int)Math.Min(options.MaxBatchSize, 1L << (63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)largest)));
            long measured = probe(batch, true);
            // The line is an estimate: while the step measured at the chosen size does not fit, halve it.
            while (batch > 1 && Total(measured, batch) > budget)
            {
                batch /= 2;
                measured = probe(batch, true);
            }
            long loader = loaderPerSample * batch;
            long estimate = Total(fixedStep + perSample * batch, batch);
            var why = new StringBuilder();
            why.AppendLine(string.Create(inv, $"batch size {batch} for a budget of {Mb(budget)} for the whole process ({options.Margin:P0} kept free beside the model):"));
            why.AppendLine(string.Create(inv, $"  the process so far {Mb(baseline),11}  (runtime, code, the data set in memory)"));
            why.AppendLine(string.Create(inv, $"  runtime's growth  {Mb(reserve),12}  (compiled code, threads: 5 % of the budget, at least 48 MB)"));
            why.AppendLine(string.Create(inv, $"  weights           {Mb(parameters),12}"));
            why.AppendLine(string.Create(inv, $"  gradients         {Mb(gradients),12}"));
            why.AppendLine(string.Create(inv, $"  optimizer state   {Mb(optimizerState),12}"));
            why.AppendLine(string.Create(inv, $"  per step, fixed   {Mb(fixedStep),12}"));
            why.AppendLine(string.Create(inv, $"  per image         {Mb(perSample),12}  × {batch} = {Mb(perSample * batch)}"));
            why.AppendLine(string.Create(inv, $"  validation step   {Mb(validation),12}  (batch {options.ValidationBatchSize}, between training steps)"));
            why.AppendLine(string.Create(inv, $"  loader batches    {Mb(loader),12}  ({options.LoaderBatches} batches of {batch} images in flight)"));
            why.AppendLine(string.Create(inv, $"  estimate          {Mb(estimate),12}  (a probe step at batch {batch} held {Mb(measured)})"));
            if (batch == options.MaxBatchSize) why.AppendLine(string.Create(inv, $"  capped at MaxBatchSize {options.MaxBatchSize}; the budget would allow {largest}."));
            return new BatchSizeAdvice(batch, budget, parameters, gradients, optimizerState, fixedStep, perSample, estimate, measured + staticBytes, why.ToString())
            {
                BaselineBytes = baseline, LoaderBytes = loader, ValidationStepBytes = validation,
            };
        }
        finally
        {
            restore(saved);
            model.ZeroGrad();
            TensorScope.TrimPool(); // the probed batch sizes' memory is not the chosen one's
        }
    }

    /// <summary>Bytes a training step at <paramref name="batch"/> holds in its scope (everything but parameter gradients).</summary>
    internal static long ProbeStep(Module model, (int Channels, int Height, int Width) input, int classes, int batch, bool training = true)
    {
        bool wasTraining = model.Training;
        model.Train(training);
        try
        {
            using var scope = TensorScope.Begin();
            var x = Tensor.Zeros(batch, input.Channels, input.Height, input.Width);
            var labels = Enumerable.Range(0, batch).Select(i => i % classes).ToArray();
            if (training)
            {
                Functional.CrossEntropy(model.Forward(x), labels).Backward();
                model.ZeroGrad();
            }
            else
            {
                using var noGrad = Engine.Autograd.GradRecorder.NoGrad();
                Functional.CrossEntropy(model.Forward(x), labels);
            }
            return scope.LentBytes;
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>
    /// What the process holds resident outside the managed heap now: the runtime, native libraries, code, thread stacks.
    /// Measure it before large managed buffers come and go (before <see cref="Find(Module, ValueTuple{int, int, int}, int, Options?)"/> probes): memory the collector has
    /// just freed can stay resident for a while and would be counted here.
    /// </summary>
    public static long OutsideManagedHeap() => Math.Max(0, Environment.WorkingSet - GC.GetGCMemoryInfo().TotalCommittedBytes);

    /// <summary>
    /// Caps this process's managed heap so that the whole process stays within <paramref name="budgetBytes"/>: the
    /// cap is the budget less what the process holds outside the managed heap (<paramref name="outsideBytes"/>, from
    /// <see cref="OutsideManagedHeap"/>; measured now when not given) and less a reserve for what the runtime adds
    /// while training (5 % of the budget, at least 48 MB). Without it the garbage of a training run (the
    /// loader's batches, buffers dropped from the pools) waits for the collector's own schedule and the resident size
    /// overshoots a budget the live data fits; with it the collector runs as the cap nears. Process-wide: for a tool
    /// that owns its process, not for a trainer inside someone else's application. Returns the cap in bytes.
    /// </summary>
    /// <exception cref="InsufficientMemoryBudgetException">The budget leaves the heap nothing, or less than it holds.</exception>
    public static long CapManagedHeap(long budgetBytes, long? outsideBytes = null)
    {
        if (budgetBytes <= 0) throw new ArgumentOutOfRangeException(nameof(budgetBytes), $"The memory budget must be positive, not {budgetBytes} bytes.");
        long outside = outsideBytes ?? OutsideManagedHeap();
        long reserve = RuntimeReserve(budgetBytes);
        long cap = budgetBytes - outside - reserve;
        if (cap <= 0)
            throw new InsufficientMemoryBudgetException(string.Create(CultureInfo.InvariantCulture,
                $"A memory budget of {Mb(budgetBytes)} leaves nothing for the managed heap: the process already holds {Mb(outside)} outside it, and {Mb(reserve)} is kept for the runtime's growth."));
        AppContext.SetData("GCHeapHardLimit", (ulong)cap);
        try
        {
            GC.RefreshMemoryLimit();
        }
        catch (InvalidOperationException e)
        {
            throw new InsufficientMemoryBudgetException(string.Create(CultureInfo.InvariantCulture,
                $"A memory budget of {Mb(budgetBytes)} leaves the managed heap {Mb(cap)}, less than the {Mb(GC.GetGCMemoryInfo().TotalCommittedBytes)} it holds now ({e.Message})."));
        }
        return cap;
    }

    /// <summary>
    /// What the runtime adds outside the heap once training runs (compiled code, the loader's and workers' threads),
    /// kept out of a budget by both the batch choice and the heap cap: 5 % of it, at least 48 MB (the wide ResNet at
    /// 512 MB went 20 MB over without it).
    /// </summary>
    internal static long RuntimeReserve(long budgetBytes) => Math.Max(48L << 20, budgetBytes / 20);

    private static string Mb(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture) + " MB";
}
