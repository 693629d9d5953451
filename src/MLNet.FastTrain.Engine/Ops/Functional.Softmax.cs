using MLNet.FastTrain.Engine.Autograd;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>softmax(x)_i = e^(x_i − max) / Σ_j e^(x_j − max) along <paramref name="dim"/>.</summary>
    public static Tensor Softmax(Tensor x, int dim = -1)
    {
        var y = SoftmaxCore(x, dim, log: false);
        int d = Tensor.NormalizeDim(dim, x.Rank);
        // dx = y ⊙ (g − Σ g·y)
        return GradRecorder.Record(y, "softmax", [x], g =>
        {
            var yd = y.Detach();
            return [Mul(yd, Sub(g, Sum(Mul(g, yd), d, keepDim: true)))];
        });
    }

    /// <summary>log softmax(x) = x − max − log Σ e^(x − max) along <paramref name="dim"/>, computed without overflow.</summary>
    public static Tensor LogSoftmax(Tensor x, int dim = -1)
    {
        var y = SoftmaxCore(x, dim, log: true);
        int d = Tensor.NormalizeDim(dim, x.Rank);
        // dx = g − e^y · Σ g
        return GradRecorder.Record(y, "log_softmax", [x], g => [Sub(g, Mul(Exp(y.Detach()), Sum(g, d, keepDim: true)))]);
    }

    private static Tensor SoftmaxCore(Tensor x, int dim, bool log)
    {
        int d = Tensor.NormalizeDim(dim, x.Rank);
        var (outer, size, inner) = Split(x.ShapeRef, d);
        var y = Tensor.ZerosLike(x);
        for (int o = 0; o < outer; o++)
        {
            for (int i = 0; i < inner; i++)
            {
                int start = o * size * inner + i;
                double max = double.NegativeInfinity;
                for (int s = 0; s < size; s++) max = Math.Max(max, x.GetFlat(start + s * inner));
                double sum = 0;
                for (int s = 0; s < size; s++) sum += Math.Exp(x.GetFlat(start + s * inner) - max);
                double logSum = Math.Log(sum);
                for (int s = 0; s < size; s++)
                {
                    double z = x.GetFlat(start + s * inner) - max;
                    y.SetFlat(start + s * inner, log ? z - logSum : Math.Exp(z) / sum);
                }
            }
        }
        return y;
    }
}
