namespace MLNet.FastTrain.Engine.Modules;

/// <summary>max(x, 0).</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Relu(input);
}

/// <summary>x for x &gt; 0, slope·x otherwise.</summary>
public sealed class LeakyReLU(double negativeSlope = 0.01) : Module
{
    /// <summary>The slope for negative inputs.</summary>
    public double NegativeSlope { get; } = negativeSlope;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.LeakyRelu(input, NegativeSlope);
}

/// <summary>x·Φ(x), exact form.</summary>
public sealed class GELU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Gelu(input);
}

/// <summary>The logistic sigmoid.</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Sigmoid(input);
}

/// <summary>The hyperbolic tangent.</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Tanh(input);
}

/// <summary>Returns its input.</summary>
public sealed class Identity : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input;
}

/// <summary>Merges the dimensions from <paramref name="startDim"/> on (default: all but the batch).</summary>
public sealed class Flatten(int startDim = 1) : Module
{
    /// <summary>The first dimension merged.</summary>
    public int StartDim { get; } = startDim;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Flatten(input, StartDim);
}

/// <summary>Inverted dropout, active only in training mode.</summary>
public sealed class Dropout : Module
{
    private readonly Generator? _generator;

    /// <summary>Creates the layer with drop probability <paramref name="p"/>.</summary>
    public Dropout(double p = 0.5, Generator? generator = null)
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), $"Dropout probability must be in [0, 1], not {p}.");
        P = p;
        _generator = generator;
    }

    /// <summary>The probability of zeroing an element.</summary>
    public double P { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Dropout(input, P, Training, _generator);
}

/// <summary>Max pooling over square windows; stride defaults to the kernel size.</summary>
public sealed class MaxPool2d(int kernelSize, int? stride = null, int padding = 0) : Module
{
    /// <summary>The window's side.</summary>
    public int KernelSize { get; } = kernelSize;

    /// <summary>The step between windows.</summary>
    public int Stride { get; } = stride ?? kernelSize;

    /// <summary>Implicit padding (never chosen as the maximum) at the start of each axis, and at its end unless <see cref="PaddingEnd"/> says less.</summary>
    public int Padding { get; } = padding;

    /// <summary>Padding at the end of each axis when it is less than at the start (see <see cref="Conv2d.PaddingEnd"/>); null pads both ends alike.</summary>
    public int? PaddingEnd
    {
        get => _paddingEnd;
        set
        {
            if (value is int e && (e < 0 || e > Padding))
                throw new ArgumentOutOfRangeException(nameof(value), $"The end padding {e} must lie between 0 and the start padding {Padding}.");
            _paddingEnd = value == Padding ? null : value;
        }
    }

    private int? _paddingEnd;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var y = Functional.MaxPool2d(input, (KernelSize, KernelSize), (Stride, Stride), (Padding, Padding));
        return _paddingEnd is int end
            ? Functional.CropToEndPadding(y, input, (KernelSize, KernelSize), (Stride, Stride), (1, 1), (Padding, Padding), (end, end))
            : y;
    }
}

/// <summary>Average pooling over square windows; stride defaults to the kernel size.</summary>
public sealed class AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true) : Module
{
    /// <summary>The window's side.</summary>
    public int KernelSize { get; } = kernelSize;

    /// <summary>The step between windows.</summary>
    public int Stride { get; } = stride ?? kernelSize;

    /// <summary>Zero padding on every side.</summary>
    public int Padding { get; } = padding;

    /// <summary>Whether padded zeros count in the divisor.</summary>
    public bool CountIncludePad { get; } = countIncludePad;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) =>
        Functional.AvgPool2d(input, (KernelSize, KernelSize), (Stride, Stride), (Padding, Padding), CountIncludePad);
}

/// <summary>Average pooling to a fixed output size, whatever the input size.</summary>
public sealed class AdaptiveAvgPool2d(int outputHeight, int outputWidth) : Module
{
    /// <summary>Pools to a square output.</summary>
    public AdaptiveAvgPool2d(int outputSize) : this(outputSize, outputSize) { }

    /// <summary>The output's height and width.</summary>
    public (int Height, int Width) OutputSize { get; } = (outputHeight, outputWidth);

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.AdaptiveAvgPool2d(input, OutputSize);
}
