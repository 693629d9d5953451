using System.Globalization;
using System.Text;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Tuning;

/// <summary>The batch size chosen for a memory budget, and the arithmetic behind it.</summary>
public sealed record BatchSizeAdvice(
    int BatchSize, long BudgetBytes, long ParameterBytes, long GradientBytes, long OptimizerStateBytes,
    long FixedStepBytes, long BytesPerSample, long EstimatedBytes, long MeasuredStepBytes, string Explanation);

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
/// Picks the largest batch size whose training step fits a memory budget, from the model's own numbers: parameters,
/// their gradients and optimizer state (fixed), plus what one training step holds, measured by probing a step at
/// batch 1 and 2 (activations kept for backward grow with the batch; the rest does not). The answer is confirmed
/// with one more probe at the chosen size, and explained part by part. A budget that cannot hold one sample is a
/// clear error, never an out-of-memory crash.
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
    }

    /// <summary>Finds the batch size for a classifier taking [channels, height, width] images.</summary>
    public static BatchSizeAdvice Find(Module model, (int Channels, int Height, int Width) input, int classes, Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new Options();
        long budget = options.MemoryBudgetBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
        if (budget <= 0) throw new ArgumentOutOfRangeException(nameof(options), $"The memory budget must be positive, not {budget} bytes.");
        if (options.Margin < 0) throw new ArgumentOutOfRangeException(nameof(options), $"The margin must be non-negative, not {options.Margin}.");

        long parameters = model.Parameters().Sum(p => (long)p.Length * 4);
        long gradients = model.Parameters().Where(p => p.RequiresGrad).Sum(p => (long)p.Length * 4);
        long optimizerState = gradients * options.OptimizerBuffersPerParameter;
        long staticBytes = parameters + gradients + optimizerState;

        var saved = model.StateDict().Clone();   // probing in training mode moves batch-norm statistics
        try
        {
            long one = ProbeStep(model, input, classes, 1);
            long two = ProbeStep(model, input, classes, 2);
            long perSample = Math.Max(1, two - one);
            long fixedStep = Math.Max(0, one - perSample);
            double usable = budget / (1 + options.Margin) - staticBytes - fixedStep;
            long largest = usable <= 0 ? 0 : (long)(usable / perSample);
            var inv = CultureInfo.InvariantCulture;
            if (largest < 1)
            {
                long needed = (long)((staticBytes + fixedStep + perSample) * (1 + options.Margin));
                throw new InsufficientMemoryBudgetException(string.Create(inv,
                    $"A memory budget of {Mb(budget)} cannot train this model even one image at a time: that needs about {Mb(needed)} " +
                    $"(weights {Mb(parameters)}, gradients {Mb(gradients)}, optimizer state {Mb(optimizerState)}, one image's step {Mb(fixedStep + perSample)}, margin {options.Margin:P0}). Raise the budget or use a smaller model or image size."));
            }
            int batch = (int)Math.Min(options.MaxBatchSize, 1L << (63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)largest)));
            long estimate = staticBytes + fixedStep + perSample * batch;
            long measured = ProbeStep(model, input, classes, batch);
            var why = new StringBuilder();
            why.AppendLine(string.Create(inv, $"batch size {batch} for a budget of {Mb(budget)} ({options.Margin:P0} kept free):"));
            why.AppendLine(string.Create(inv, $"  weights           {Mb(parameters),12}"));
            why.AppendLine(string.Create(inv, $"  gradients         {Mb(gradients),12}"));
            why.AppendLine(string.Create(inv, $"  optimizer state   {Mb(optimizerState),12}"));
            why.AppendLine(string.Create(inv, $"  per step, fixed   {Mb(fixedStep),12}"));
            why.AppendLine(string.Create(inv, $"  per image         {Mb(perSample),12}  × {batch} = {Mb(perSample * batch)}"));
            why.AppendLine(string.Create(inv, $"  estimate          {Mb(estimate),12}  (a probe step at batch {batch} held {Mb(measured + staticBytes)})"));
            if (batch == options.MaxBatchSize) why.AppendLine(string.Create(inv, $"  capped at MaxBatchSize {options.MaxBatchSize}; the budget would allow {largest}."));
            return new BatchSizeAdvice(batch, budget, parameters, gradients, optimizerState, fixedStep, perSample, estimate, measured + staticBytes, why.ToString());
        }
        finally
        {
            model.LoadStateDict(saved);
            model.ZeroGrad();
        }
    }

    /// <summary>Bytes a training step at <paramref name="batch"/> holds in its scope (everything but parameter gradients).</summary>
    private static long ProbeStep(Module model, (int Channels, int Height, int Width) input, int classes, int batch)
    {
        bool wasTraining = model.Training;
        model.Train();
        try
        {
            using var scope = TensorScope.Begin();
            var x = Tensor.Zeros(batch, input.Channels, input.Height, input.Width);
            var labels = Enumerable.Range(0, batch).Select(i => i % classes).ToArray();
            Functional.CrossEntropy(model.Forward(x), labels).Backward();
            model.ZeroGrad();
            return scope.LentBytes;
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    private static string Mb(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture) + " MB";
}
