namespace MLNet.FastTrain.Engine.Initializers;

/// <summary>Which fan the Kaiming initialisers preserve the variance of.</summary>
public enum FanMode
{
    /// <summary>Preserve the variance of activations in the forward pass.</summary>
    FanIn,

    /// <summary>Preserve the variance of gradients in the backward pass.</summary>
    FanOut,
}

/// <summary>
/// Weight initialisers with torch's definitions. fan_in = size(1)·receptive field, fan_out = size(0)·receptive
/// field, where the receptive field is the product of the dimensions after the first two.
/// </summary>
public static class Init
{
    /// <summary>The recommended gain for a nonlinearity: 1 for linear/sigmoid, 5/3 for tanh, √2 for ReLU, √(2/(1+a²)) for leaky ReLU.</summary>
    public static double Gain(string nonlinearity, double negativeSlope = 0.01) => nonlinearity switch
    {
        "linear" or "conv2d" or "sigmoid" => 1.0,
        "tanh" => 5.0 / 3.0,
        "relu" => Math.Sqrt(2.0),
        "leaky_relu" => Math.Sqrt(2.0 / (1 + negativeSlope * negativeSlope)),
        _ => throw new ArgumentException($"Unknown nonlinearity '{nonlinearity}'; expected linear, conv2d, sigmoid, tanh, relu or leaky_relu.", nameof(nonlinearity)),
    };

    /// <summary>(fan_in, fan_out) of a weight of rank ≥ 2.</summary>
    public static (int FanIn, int FanOut) Fans(Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank < 2) throw new ArgumentException($"Fan in and fan out need a tensor of rank ≥ 2; shape is {ShapeText.Format(weight.Shape)}.", nameof(weight));
        int receptive = 1;
        for (int i = 2; i < weight.Rank; i++) receptive *= weight.Size(i);
        return (weight.Size(1) * receptive, weight.Size(0) * receptive);
    }

    /// <summary>U(−b, b) with b = gain·√(3 / fan), gain from <paramref name="nonlinearity"/> and <paramref name="a"/> (He et al., 2015).</summary>
    public static Tensor KaimingUniform(Tensor weight, double a = 0, FanMode mode = FanMode.FanIn, string nonlinearity = "leaky_relu", Generator? generator = null)
    {
        double std = Gain(nonlinearity, a) / Math.Sqrt(Fan(weight, mode));
        double bound = Math.Sqrt(3.0) * std;
        return weight.FillUniform(-bound, bound, generator);
    }

    /// <summary>N(0, std²) with std = gain / √fan (He et al., 2015).</summary>
    public static Tensor KaimingNormal(Tensor weight, double a = 0, FanMode mode = FanMode.FanIn, string nonlinearity = "leaky_relu", Generator? generator = null) =>
        weight.FillNormal(0, Gain(nonlinearity, a) / Math.Sqrt(Fan(weight, mode)), generator);

    /// <summary>U(−b, b) with b = gain·√(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010).</summary>
    public static Tensor XavierUniform(Tensor weight, double gain = 1, Generator? generator = null)
    {
        var (fanIn, fanOut) = Fans(weight);
        double bound = gain * Math.Sqrt(6.0 / (fanIn + fanOut));
        return weight.FillUniform(-bound, bound, generator);
    }

    /// <summary>N(0, std²) with std = gain·√(2 / (fan_in + fan_out)) (Glorot and Bengio, 2010).</summary>
    public static Tensor XavierNormal(Tensor weight, double gain = 1, Generator? generator = null)
    {
        var (fanIn, fanOut) = Fans(weight);
        return weight.FillNormal(0, gain * Math.Sqrt(2.0 / (fanIn + fanOut)), generator);
    }

    /// <summary>Fills with a constant.</summary>
    public static Tensor Constant(Tensor tensor, double value) => tensor.Fill(value);

    /// <summary>Fills with zeros.</summary>
    public static Tensor Zeros(Tensor tensor) => tensor.Fill(0);

    /// <summary>Fills with ones.</summary>
    public static Tensor Ones(Tensor tensor) => tensor.Fill(1);

    /// <summary>
    /// torch's default for Linear and Conv2d: weight from Kaiming uniform with a = √5, which gives
    /// U(−1/√fan_in, 1/√fan_in), and bias from the same range.
    /// </summary>
    internal static void DefaultLayer(Tensor weight, Tensor? bias, Generator? generator)
    {
        KaimingUniform(weight, a: Math.Sqrt(5), generator: generator);
        if (bias is null) return;
        double bound = 1.0 / Math.Sqrt(Fans(weight).FanIn);
        bias.FillUniform(-bound, bound, generator);
    }

    private static int Fan(Tensor weight, FanMode mode)
    {
        var (fanIn, fanOut) = Fans(weight);
        int fan = mode == FanMode.FanIn ? fanIn : fanOut;
        if (fan == 0) throw new ArgumentException($"A tensor of shape {ShapeText.Format(weight.Shape)} has a zero fan.", nameof(weight));
        return fan;
    }
}
