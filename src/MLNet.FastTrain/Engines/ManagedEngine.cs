using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Engines;

/// <summary>The managed engine: the description is the network and the optimizer (no native dependency).</summary>
public sealed class ManagedEngine(Module model, Optimizer optimizer) : TrainingEngine(model, optimizer)
{
    private Tensor? _output, _loss;

    /// <inheritdoc />
    public override string Name => "managed";

    /// <inheritdoc />
    public override string Device => "cpu";

    /// <inheritdoc />
    public override Tensor? Output => _output;

    /// <inheritdoc />
    public override Tensor? Loss => _loss;

    /// <inheritdoc />
    protected override void OnTrainingChanged(bool training) => Description.Train(training);

    /// <inheritdoc />
    protected override void OnOptimizerChanged()
    {
    }

    /// <summary>
    /// Whether a step's scope hands its tensor objects to the next step's (default true), so that a steady-state step
    /// allocates nothing on the managed heap and a long run's memory stays flat. Its contract: a step's tensors
    /// (<see cref="Output"/>, <see cref="Loss"/>, anything a callback computes in the step) are read in the step only;
    /// values taken out (<see cref="Tensor.Item"/>, <see cref="Tensor.ToArray"/>) may be kept.
    /// </summary>
    public bool ReuseStepTensors { get; set; } = true;

    /// <inheritdoc />
    public override IDisposable BeginStep()
    {
        _output = _loss = null;
        return (_step ??= new StepScope(this)).Begin(ReuseStepTensors);
    }

    private StepScope? _step;

    // One object per engine for every step (steps do not nest): it ends the step's tensor scope and forgets the step's
    // output and loss, which are not to be read once their objects may be handed to the next step.
    private sealed class StepScope(ManagedEngine engine) : IDisposable
    {
        private TensorScope? _scope;

        public StepScope Begin(bool reuse)
        {
            _scope = TensorScope.Begin(reuse);
            return this;
        }

        public void Dispose()
        {
            _scope?.Dispose();
            _scope = null;
            engine._output = engine._loss = null;
        }
    }

    /// <inheritdoc />
    public override double Forward(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        _output = Description.Forward(batch.Images);
        _loss = LossFunction(_output, batch.Labels);
        return _loss.Item();
    }

    /// <inheritdoc />
    public override void Backward()
    {
        var loss = _loss ?? throw new InvalidOperationException("Backward needs a Forward in the same step.");
        Optimizer.ZeroGrad(setToNone: false);
        loss.Backward();
    }

    /// <inheritdoc />
    public override void ClipGradients(double max, bool byValue)
    {
        var parameters = Optimizer.Groups.SelectMany(g => g.Parameters);
        if (byValue) GradClip.ClipByValue(parameters, max);
        else GradClip.ClipByNorm(parameters, max);
    }

    /// <inheritdoc />
    public override void Step() => Optimizer.Step();

    private IEnumerable<Parameter> Trainable => Optimizer.Groups.SelectMany(g => g.Parameters).Where(p => p.RequiresGrad);

    /// <inheritdoc />
    protected override int GradientLength() => Trainable.Sum(p => p.Length);

    /// <inheritdoc />
    protected override void ReadGradients(Span<float> bucket)
    {
        int offset = 0;
        foreach (var p in Trainable)
        {
            var slot = bucket.Slice(offset, p.Length);
            if (p.Grad is null) slot.Clear();
            else p.Grad.AsSpan().CopyTo(slot);
            offset += p.Length;
        }
    }

    /// <inheritdoc />
    protected override void WriteGradients(ReadOnlySpan<float> bucket)
    {
        int offset = 0;
        foreach (var p in Trainable)
        {
            p.Grad ??= Tensor.Zeros(p.ShapeArray());
            bucket.Slice(offset, p.Length).CopyTo(p.Grad.AsSpan());
            offset += p.Length;
        }
    }

    /// <inheritdoc />
    public override Tensor Logits(Tensor images)
    {
        using var noGrad = GradRecorder.NoGrad();
        return Description.Forward(images);
    }

    /// <inheritdoc />
    public override StateDict ModelState() => Description.StateDict().Clone();

    /// <inheritdoc />
    public override void LoadModelState(StateDict state) => Description.LoadStateDict(state);

    /// <inheritdoc />
    public override StateDict OptimizerState() => Optimizer.StateDict();

    /// <inheritdoc />
    public override void LoadOptimizerState(StateDict state) => Optimizer.LoadStateDict(state);

    /// <inheritdoc />
    public override Module SyncDescription() => Description;

    /// <summary>Nothing to copy: the description is the network.</summary>
    public override void LoadDescription()
    {
    }
}
