using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using Xunit;

namespace MLNet.FastTrain.TestUtilities;

/// <summary>
/// Checks backward rules against central differences, in double precision, for every element of every input,
/// with a random upstream gradient (an all-ones upstream would hide errors that sum to zero, as in softmax).
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Compares ∂⟨f(x), u⟩/∂x from autograd with (⟨f(x + εe_j), u⟩ − ⟨f(x − εe_j), u⟩) / 2ε for each element j.
    /// </summary>
    /// <param name="f">The function under test; called many times, so it must be deterministic.</param>
    /// <param name="inputs">The inputs; converted to float64 leaves.</param>
    /// <param name="wrt">Which inputs to differentiate (default: all).</param>
    public static void Check(Func<Tensor[], Tensor> f, Tensor[] inputs, bool[]? wrt = null,
        double eps = 1e-6, double atol = 1e-7, double rtol = 1e-5, ulong seed = 1)
    {
        var leaves = inputs.Select(t => { var d = t.Detach().To(DType.Float64).Clone(); return d; }).ToArray();
        wrt ??= Enumerable.Repeat(true, inputs.Length).ToArray();
        for (int i = 0; i < leaves.Length; i++) leaves[i].RequiresGrad = wrt[i];

        var y = f(leaves);
        Assert.Equal(DType.Float64, y.DType);
        var upstream = Tensor.Normal(y.ShapeArray(), generator: new Generator(seed), dtype: DType.Float64);
        y.Backward(upstream);

        using var _ = GradRecorder.NoGrad();
        for (int i = 0; i < leaves.Length; i++)
        {
            if (!wrt[i]) continue;
            var analytic = leaves[i].Grad;
            Assert.True(analytic is not null, $"input {i} received no gradient");
            var x = leaves[i].AsDoubleSpan();
            var a = analytic!.AsDoubleSpan();
            for (int j = 0; j < x.Length; j++)
            {
                double saved = x[j];
                x[j] = saved + eps;
                double plus = Dot(f(leaves), upstream);
                x[j] = saved - eps;
                double minus = Dot(f(leaves), upstream);
                x[j] = saved;
                double numeric = (plus - minus) / (2 * eps);
                double tolerance = atol + rtol * Math.Abs(numeric);
                Assert.True(Math.Abs(a[j] - numeric) <= tolerance,
                    $"input {i}, element {j}: autograd {a[j]:R}, central difference {numeric:R} (|diff| {Math.Abs(a[j] - numeric):E2} > {tolerance:E2})");
            }
        }
    }

    private static double Dot(Tensor y, Tensor u)
    {
        var ys = y.AsDoubleSpan();
        var us = u.AsDoubleSpan();
        double s = 0;
        for (int k = 0; k < ys.Length; k++) s += ys[k] * us[k];
        return s;
    }
}
