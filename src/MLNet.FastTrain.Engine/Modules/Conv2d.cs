using MLNet.FastTrain.Engine.Initializers;

namespace MLNet.FastTrain.Engine.Modules;

/// <summary>2-d convolution with a weight [out, in/groups, k, k], initialised as torch does.</summary>
public sealed class Conv2d : Module
{
    /// <summary>Creates the layer with a square kernel.</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, Generator? generator = null)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, generator)
    {
    }

    /// <summary>Creates the layer.</summary>
    public Conv2d(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups = 1, bool bias = true, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outChannels);
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"groups = {groups} must divide in_channels ({inChannels}) and out_channels ({outChannels}).", nameof(groups));
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        Weight = new Parameter(Tensor.Zeros(outChannels, inChannels / groups, kernelSize.H, kernelSize.W));
        Bias = bias ? new Parameter(Tensor.Zeros(outChannels)) : null;
        Init.DefaultLayer(Weight, Bias, generator);
        RegisterParameter("weight", Weight);
        RegisterParameter("bias", Bias);
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Kernel height and width.</summary>
    public (int H, int W) KernelSize { get; }

    /// <summary>Stride.</summary>
    public (int H, int W) Stride { get; }

    /// <summary>Zero padding on each side (at the start of each axis, and at its end unless <see cref="PaddingEnd"/> says less).</summary>
    public (int H, int W) Padding { get; }

    /// <summary>
    /// Zero padding at the end of each axis when it is less than at the start (ONNX's pads [b, b, e, e], as CNTK
    /// exports write them); null (default) pads both ends by <see cref="Padding"/>. Computed as the symmetric
    /// convolution cropped to the smaller size, which reads the same windows.
    /// </summary>
    public (int H, int W)? PaddingEnd
    {
        get => _paddingEnd;
        set
        {
            if (value is (int h, int w) && (h < 0 || w < 0 || h > Padding.H || w > Padding.W))
                throw new ArgumentOutOfRangeException(nameof(value), $"The end padding ({h}, {w}) must lie between 0 and the start padding ({Padding.H}, {Padding.W}).");
            _paddingEnd = value == Padding ? null : value;
        }
    }

    private (int H, int W)? _paddingEnd;

    /// <summary>Dilation.</summary>
    public (int H, int W) Dilation { get; }

    /// <summary>Groups.</summary>
    public int Groups { get; }

    /// <summary>The weight [out, in/groups, kh, kw].</summary>
    public Parameter Weight { get; }

    /// <summary>The bias [out], or null.</summary>
    public Parameter? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var y = Functional.Conv2d(input, Weight, Bias, Stride, Padding, Dilation, Groups);
        return _paddingEnd is { } end ? Functional.CropToEndPadding(y, input, KernelSize, Stride, Dilation, Padding, end) : y;
    }
}
