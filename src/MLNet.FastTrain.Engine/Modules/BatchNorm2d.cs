namespace MLNet.FastTrain.Engine.Modules;

/// <summary>
/// Batch normalisation over [N, C, H, W] per channel, with learnable scale and shift and running statistics for
/// evaluation (see <see cref="Functional.BatchNorm2d"/>).
/// </summary>
public sealed class BatchNorm2d : Module
{
    /// <summary>Creates the layer: weight 1, bias 0, running mean 0, running variance 1, as torch does.</summary>
    public BatchNorm2d(int numFeatures, double eps = 1e-5, double momentum = 0.1, bool affine = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numFeatures);
        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        Weight = affine ? new Parameter(Tensor.Ones(numFeatures)) : null;
        Bias = affine ? new Parameter(Tensor.Zeros(numFeatures)) : null;
        RunningMean = Tensor.Zeros(numFeatures);
        RunningVar = Tensor.Ones(numFeatures);
        RegisterParameter("weight", Weight);
        RegisterParameter("bias", Bias);
        RegisterBuffer("running_mean", RunningMean);
        RegisterBuffer("running_var", RunningVar);
    }

    /// <summary>Channels.</summary>
    public int NumFeatures { get; }

    /// <summary>Added to the variance before the square root.</summary>
    public double Eps { get; }

    /// <summary>Weight of the newest batch in the running statistics.</summary>
    public double Momentum { get; }

    /// <summary>
    /// When true the layer normalises with its running statistics and leaves them unchanged even in training
    /// mode (useful when fine-tuning a frozen body with small batches).
    /// </summary>
    public bool FreezeStatistics { get; set; }

    /// <summary>Scale per channel, or null when not affine.</summary>
    public Parameter? Weight { get; }

    /// <summary>Shift per channel, or null when not affine.</summary>
    public Parameter? Bias { get; }

    /// <summary>Running mean per channel.</summary>
    public Tensor RunningMean { get; }

    /// <summary>Running (unbiased) variance per channel.</summary>
    public Tensor RunningVar { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) =>
        Functional.BatchNorm2d(input, RunningMean, RunningVar, Weight, Bias, Training && !FreezeStatistics, Momentum, Eps);

    /// <summary>
    /// relu(this(input) + residual) as one fused op (<see cref="Functional.BatchNorm2dRelu"/>): what a following
    /// <see cref="ReLU"/> in a <see cref="Sequential"/>, or a residual block's tail, computes with fewer passes.
    /// </summary>
    public Tensor ForwardRelu(Tensor input, Tensor? residual = null) =>
        Functional.BatchNorm2dRelu(input, RunningMean, RunningVar, Weight, Bias, Training && !FreezeStatistics, Momentum, Eps, residual);
}
