using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Engines;

/// <summary>
/// Runs a described model: the seam between the training layer and an engine (docs/design.md §9). The description
/// is a managed <see cref="Module"/> (architecture, torch's names, trainability) and a managed
/// <see cref="Optimizer"/> (parameter groups and their hyperparameters); an engine executes forward, backward and
/// optimizer steps for it and hands state back as host <see cref="StateDict"/>s.
/// </summary>
public abstract class TrainingEngine
{
    /// <summary>Creates an engine for a description.</summary>
    protected TrainingEngine(Module model, Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        Description = model;
        Optimizer = optimizer;
    }

    /// <summary>The engine's name: "managed" or "torch".</summary>
    public abstract string Name { get; }

    /// <summary>Where the engine computes: "cpu", "cuda:0", ….</summary>
    public abstract string Device { get; }

    /// <summary>The described network (on engines other than the managed one, its weights lag the engine's until <see cref="SyncDescription"/>).</summary>
    public Module Description { get; }

    /// <summary>The described optimizer: its groups' hyperparameters are what every <see cref="Step"/> uses.</summary>
    public Optimizer Optimizer { get; private set; }

    /// <summary>The loss of a training step: logits and labels to a scalar (the managed engine's tensors).</summary>
    public Func<Tensor, int[], Tensor> LossFunction { get; set; } = (logits, labels) => Functional.CrossEntropy(logits, labels);

    /// <summary>Whether the network is in training mode.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Sets training or evaluation mode.</summary>
    public void Train(bool training = true)
    {
        Training = training;
        OnTrainingChanged(training);
    }

    /// <summary>Applies a mode change to the engine's network.</summary>
    protected abstract void OnTrainingChanged(bool training);

    /// <summary>Replaces the optimizer (for example after unfreezing, with new groups); its state starts empty.</summary>
    public void SetOptimizer(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Optimizer = optimizer;
        OnOptimizerChanged();
    }

    /// <summary>Rebuilds the engine's optimizer after <see cref="SetOptimizer"/>.</summary>
    protected abstract void OnOptimizerChanged();

    /// <summary>A scope that releases every tensor the step creates when it is disposed.</summary>
    public abstract IDisposable BeginStep();

    /// <summary>Training-mode forward and loss for a batch, kept for <see cref="Backward"/>; returns the loss.</summary>
    public abstract double Forward(Batch batch);

    /// <summary>The last <see cref="Forward"/>'s output on the managed engine, or null on others.</summary>
    public virtual Tensor? Output => null;

    /// <summary>The last <see cref="Forward"/>'s loss tensor on the managed engine, or null on others.</summary>
    public virtual Tensor? Loss => null;

    /// <summary>Clears the gradients and back-propagates the last loss.</summary>
    public abstract void Backward();

    /// <summary>Clips the trainable parameters' gradients by their joint norm, or by value.</summary>
    public abstract void ClipGradients(double max, bool byValue);

    /// <summary>One optimizer step with the described groups' current hyperparameters and trainability.</summary>
    public abstract void Step();

    private float[] _bucket = [];

    /// <summary>
    /// Averages the trainable parameters' gradients over the ranks of <paramref name="collective"/> (docs/design.md
    /// §11): they are copied into one flat host buffer, summed across ranks, divided by the rank count and written
    /// back. Between <see cref="Backward"/> and clipping and <see cref="Step"/>; a collective of one does nothing.
    /// </summary>
    public void AllReduceGradients(Distributed.ICollective collective)
    {
        ArgumentNullException.ThrowIfNull(collective);
        if (collective.Size == 1) return;
        int length = GradientLength();
        if (_bucket.Length != length) _bucket = new float[length];
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        ReadGradients(_bucket);
        long read = System.Diagnostics.Stopwatch.GetTimestamp();
        collective.AllReduceSum(_bucket);
        long reduced = System.Diagnostics.Stopwatch.GetTimestamp();
        System.Numerics.Tensors.TensorPrimitives.Multiply(_bucket, 1f / collective.Size, _bucket);
        WriteGradients(_bucket);
        long written = System.Diagnostics.Stopwatch.GetTimestamp();
        AllReduceTime += System.Diagnostics.Stopwatch.GetElapsedTime(read, reduced);
        GradientCopyTime += System.Diagnostics.Stopwatch.GetElapsedTime(start, read) + System.Diagnostics.Stopwatch.GetElapsedTime(reduced, written);
    }

    /// <summary>
    /// Time spent in the collective's allreduce by <see cref="AllReduceGradients"/> so far: the transfer and sum, and
    /// any wait for a slower rank.
    /// </summary>
    public TimeSpan AllReduceTime { get; private set; }

    /// <summary>Time <see cref="AllReduceGradients"/> spent copying the gradients into its host bucket and back (from and to the device on a GPU).</summary>
    public TimeSpan GradientCopyTime { get; private set; }

    /// <summary>The number of trainable parameter values (the length of the gradient bucket).</summary>
    protected abstract int GradientLength();

    /// <summary>Copies the trainable parameters' gradients, in the optimizer's order, into <paramref name="bucket"/> (a missing gradient as zeros).</summary>
    protected abstract void ReadGradients(Span<float> bucket);

    /// <summary>Writes <paramref name="bucket"/> back as the trainable parameters' gradients, in the same order.</summary>
    protected abstract void WriteGradients(ReadOnlySpan<float> bucket);

    /// <summary>Evaluation-mode-agnostic forward without gradients: logits [N, classes] on the host.</summary>
    public abstract Tensor Logits(Tensor images);

    /// <summary>
    /// <see cref="Logits(Tensor)"/> of a batch; an engine that <see cref="PreparesBatches"/> reads its pixels.
    /// </summary>
    public virtual Tensor Logits(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return Logits(batch.Images);
    }

    /// <summary>
    /// The output of the described network's first <paramref name="children"/> top-level children (a body, as
    /// precomputed activations take it) for a batch: evaluation mode, no gradients, on the host. The description must
    /// be a <see cref="Sequential"/>.
    /// </summary>
    public virtual Tensor BodyOutput(Batch batch, int children)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return ForwardInEvaluation(Body(children), batch.Images);
    }

    /// <summary>
    /// <paramref name="input"/> through <paramref name="layers"/> in turn, each in evaluation mode and without
    /// gradients, every layer's mode put back afterwards.
    /// </summary>
    internal static Tensor ForwardInEvaluation(IReadOnlyList<Module> layers, Tensor input)
    {
        bool[] modes = [.. layers.Select(m => m.Training)];
        try
        {
            foreach (var m in layers) m.Eval();
            using var noGrad = Engine.Autograd.GradRecorder.NoGrad();
            foreach (var m in layers) input = m.Forward(input);
            return input;
        }
        finally
        {
            for (int i = 0; i < layers.Count; i++) layers[i].Train(modes[i]);
        }
    }

    /// <summary>The description's first <paramref name="children"/> top-level children.</summary>
    protected IReadOnlyList<Module> Body(int children)
    {
        if (Description is not Sequential sequential)
            throw new InvalidOperationException($"A body's output needs a Sequential network, not {Description.GetType().Name}.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(children);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(children, sequential.Count);
        return [.. sequential.NamedChildren().Take(children).Select(kv => kv.Value)];
    }

    /// <summary>
    /// The memory a step at <paramref name="batch"/> holds beyond the weights (activations kept for backward and
    /// scratch), as the batch-size finder budgets it: a training step (forward and backward, no optimizer step) or an
    /// evaluation step, on zero images of <paramref name="input"/>'s shape. The managed engine counts what its tensor
    /// scope lends; another engine measures its own allocator. Batch-norm statistics move: save and restore the state.
    /// </summary>
    public virtual long ProbeStepBytes(int batch, (int Channels, int Height, int Width) input, int classes, bool training) =>
        Tuning.BatchSizeFinder.ProbeStep(Description, input, classes, batch, training);

    /// <summary>
    /// The two batch sizes whose <see cref="ProbeStepBytes"/> give the batch-size finder its line (fixed + per image ×
    /// batch): 1 and 2 where the count is exact, as on the managed engine.
    /// </summary>
    public virtual (int Small, int Large) ProbeBatchSizes => (1, 2);

    /// <summary>
    /// Whether the engine normalises and augments batches of uint8 pixels itself, on its device (docs/design.md §9,
    /// "Batches on the device"); the learner then asks its loaders for <see cref="Batch.Pixels"/>.
    /// </summary>
    public virtual bool PreparesBatches => false;

    /// <summary>A copy of the network's weights and buffers (torch's names).</summary>
    public abstract StateDict ModelState();

    /// <summary>Loads weights and buffers saved by <see cref="ModelState"/> (from either engine).</summary>
    public abstract void LoadModelState(StateDict state);

    /// <summary>A copy of the optimizer's per-parameter buffers and hyperparameters, in the managed optimizer's naming.</summary>
    public abstract StateDict OptimizerState();

    /// <summary>Restores <see cref="OptimizerState"/>.</summary>
    public abstract void LoadOptimizerState(StateDict state);

    /// <summary>Copies the engine's weights into <see cref="Description"/> (a no-op on the managed engine) and returns it.</summary>
    public virtual Module SyncDescription()
    {
        var state = ModelState();
        Description.LoadStateDict(state);
        return Description;
    }

    /// <summary>
    /// Copies <see cref="Description"/>'s weights and buffers into the engine (a no-op on the managed engine), after
    /// something trained the description directly, as the head trained on precomputed activations does.
    /// </summary>
    public virtual void LoadDescription() => LoadModelState(Description.StateDict());

    /// <summary>
    /// Frees the engine's native memory now instead of when it is collected (a no-op on the managed engine); the
    /// engine is not used afterwards.
    /// </summary>
    public virtual void Release()
    {
    }
}
