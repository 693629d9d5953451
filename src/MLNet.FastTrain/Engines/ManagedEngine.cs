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

    /// <inheritdoc />
    public override IDisposable BeginStep()
    {
        _output = _loss = null;
        return TensorScope.Begin();
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
