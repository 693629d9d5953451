using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Kernels;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>max(x, 0). The gradient at exactly 0 is 0, as in torch.</summary>
    public static Tensor Relu(Tensor x) => LeakyRelu(x, 0.0, "relu");

    /// <summary>x for x &gt; 0, slope·x otherwise.</summary>
    public static Tensor LeakyRelu(Tensor x, double negativeSlope = 0.01) => LeakyRelu(x, negativeSlope, "leaky_relu");

    private static Tensor LeakyRelu(Tensor x, double slope, string name)
    {
        var y = Tensor.EmptyLike(x);
        ParallelRanges.For(x.Length, ParallelRanges.ElementwiseGrain, (x, y, slope), static (s, a, b) =>
        {
            if (IsF32(s.x)) LeakyReluKernel<float>(s.x.Span<float>()[a..b], s.y.Span<float>()[a..b], (float)s.slope);
            else LeakyReluKernel<double>(s.x.Span<double>()[a..b], s.y.Span<double>()[a..b], s.slope);
        });
        return GradRecorder.Record(y, name, [x], (x, slope), static (s, g, grads) =>
        {
            var gx = Tensor.EmptyLike(s.x);
            ParallelRanges.For(s.x.Length, ParallelRanges.ElementwiseGrain, (s.x, g, gx, s.slope), static (s, a, b) =>
            {
                if (IsF32(s.x)) LeakyReluBackward<float>(s.x.Span<float>()[a..b], s.g.Span<float>()[a..b], s.gx.Span<float>()[a..b], (float)s.slope);
                else LeakyReluBackward<double>(s.x.Span<double>()[a..b], s.g.Span<double>()[a..b], s.gx.Span<double>()[a..b], s.slope);
            });
            grads[0] = gx;
        });
    }

    private static void LeakyReluKernel<T>(ReadOnlySpan<T> x, Span<T> y, T slope) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (slope == T.Zero) { TensorPrimitives.Max(x, T.Zero, y); return; }
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > T.Zero ? x[i] : slope * x[i];
    }

    private static void LeakyReluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> g, Span<T> gx, T slope) where T : unmanaged, IFloatingPointIeee754<T> =>
        Fused.LeakyReluBackward(x, g, gx, slope);

    /// <summary>1 / (1 + e^-x).</summary>
    public static Tensor Sigmoid(Tensor x)
    {
        var y = Tensor.EmptyLike(x);
        if (IsF32(x)) TensorPrimitives.Sigmoid<float>(x.Span<float>(), y.Span<float>());
        else TensorPrimitives.Sigmoid<double>(x.Span<double>(), y.Span<double>());
        // σ' = σ(1 − σ)
        return GradRecorder.Record(y, "sigmoid", [x], g => [Mul(g, Mul(y.Detach(), AddScalar(Neg(y.Detach()), 1)))]);
    }

    /// <summary>The hyperbolic tangent.</summary>
    public static Tensor Tanh(Tensor x)
    {
        var y = Tensor.EmptyLike(x);
        if (IsF32(x)) TensorPrimitives.Tanh<float>(x.Span<float>(), y.Span<float>());
        else TensorPrimitives.Tanh<double>(x.Span<double>(), y.Span<double>());
        // tanh' = 1 − tanh²
        return GradRecorder.Record(y, "tanh", [x], g => [Mul(g, AddScalar(Neg(Mul(y.Detach(), y.Detach())), 1))]);
    }

    /// <summary>e^x.</summary>
    public static Tensor Exp(Tensor x)
    {
        var y = Tensor.EmptyLike(x);
        if (IsF32(x)) TensorPrimitives.Exp<float>(x.Span<float>(), y.Span<float>());
        else TensorPrimitives.Exp<double>(x.Span<double>(), y.Span<double>());
        return GradRecorder.Record(y, "exp", [x], g => [Mul(g, y.Detach())]);
    }

    /// <summary>The natural logarithm.</summary>
    public static Tensor Log(Tensor x)
    {
        var y = Tensor.EmptyLike(x);
        if (IsF32(x)) TensorPrimitives.Log<float>(x.Span<float>(), y.Span<float>());
        else TensorPrimitives.Log<double>(x.Span<double>(), y.Span<double>());
        return GradRecorder.Record(y, "log", [x], g => [Div(g, x.Detach())]);
    }

    /// <summary>
    /// GELU in its exact form, x·Φ(x) with Φ the standard normal CDF (Hendrycks and Gimpel, 2016), as torch's
    /// default <c>approximate='none'</c>.
    /// </summary>
    public static Tensor Gelu(Tensor x)
    {
        var y = Tensor.EmptyLike(x);
        if (IsF32(x)) GeluKernel<float>(x.Span<float>(), y.Span<float>());
        else GeluKernel<double>(x.Span<double>(), y.Span<double>());
        return GradRecorder.Record(y, "gelu", [x], g =>
        {
            var gx = Tensor.EmptyLike(x);
            if (IsF32(x)) GeluBackward<float>(x.Span<float>(), g.Span<float>(), gx.Span<float>());
            else GeluBackward<double>(x.Span<double>(), g.Span<double>(), gx.Span<double>());
            return [gx];
        });
    }

    private static void GeluKernel<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = double.CreateTruncating(x[i]);
            y[i] = T.CreateTruncating(v * SpecialFunctions.NormalCdf(v));
        }
    }

    private static void GeluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> g, Span<T> gx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        // d/dx x·Φ(x) = Φ(x) + x·φ(x)
        for (int i = 0; i < x.Length; i++)
        {
            double v = double.CreateTruncating(x[i]);
            double d = SpecialFunctions.NormalCdf(v) + v * SpecialFunctions.NormalPdf(v);
            gx[i] = T.CreateTruncating(double.CreateTruncating(g[i]) * d);
        }
    }
}
