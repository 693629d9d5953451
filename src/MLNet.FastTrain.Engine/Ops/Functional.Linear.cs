using System.Numerics;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Kernels;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>The matrix product of a [m, k] and b [k, n].</summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        CheckSameDType("matmul", a, b);
        CheckRank("matmul", "a", a, 2);
        CheckRank("matmul", "b", b, 2);
        int m = a.Size(0), k = a.Size(1), n = b.Size(1);
        if (b.Size(0) != k) throw ShapeMismatchException.For("matmul", "inner dimensions differ", a.Shape, b.Shape);
        var y = Tensor.Empty([m, n], a.DType);
        Gemm_(a, false, b, false, y, m, n, k, accumulate: false);
        OperationCounters.Add((long)m * n * k);
        return GradRecorder.Record(y, "matmul", [a, b], (a, b), static (s, g, grads) =>
        {
            var (a, b) = s;
            int m = a.Size(0), k = a.Size(1), n = b.Size(1);
            Tensor? ga = null, gb = null;
            if (a.RequiresGrad) { ga = Tensor.EmptyLike(a); Gemm_(g, false, b, true, ga, m, k, n, false); }   // dA = G·Bᵀ
            if (b.RequiresGrad) { gb = Tensor.EmptyLike(b); Gemm_(a, true, g, false, gb, k, n, m, false); }   // dB = Aᵀ·G
            (grads[0], grads[1]) = (ga, gb);
        });
    }

    /// <summary>
    /// y = x·Wᵀ + b for x [N, in], weight [out, in] and an optional bias [out] (torch's layout).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        CheckSameDType("linear", x, weight);
        CheckRank("linear", "input", x, 2);
        CheckRank("linear", "weight", weight, 2);
        int n = x.Size(0), inF = x.Size(1), outF = weight.Size(0);
        if (weight.Size(1) != inF) throw ShapeMismatchException.For("linear", "input features must equal weight's second dimension", x.Shape, weight.Shape);
        if (bias is not null && (bias.Rank != 1 || bias.Size(0) != outF))
            throw ShapeMismatchException.For("linear", "bias must be [out_features]", bias.Shape, weight.Shape);

        var y = Tensor.Empty([n, outF], x.DType);
        Gemm_(x, false, weight, true, y, n, outF, inF, accumulate: false);
        OperationCounters.Add((long)n * outF * inF);
        if (bias is not null) AddRowVector(y, bias);
        return GradRecorder.Record(y, "linear", [x, weight, bias], (x, weight, bias), static (s, g, grads) =>
        {
            var (x, weight, bias) = s;
            int n = x.Size(0), inF = x.Size(1), outF = weight.Size(0);
            Tensor? gx = null, gw = null, gb = null;
            if (x.RequiresGrad) { gx = Tensor.EmptyLike(x); Gemm_(g, false, weight, false, gx, n, inF, outF, false); } // dX = G·W
            if (weight.RequiresGrad) { gw = Tensor.EmptyLike(weight); Gemm_(g, true, x, false, gw, outF, inF, n, false); } // dW = Gᵀ·X
            if (bias is not null && bias.RequiresGrad) gb = Sum(g, 0);
            (grads[0], grads[1], grads[2]) = (gx, gw, gb);
        });
    }

    private static void AddRowVector(Tensor y, Tensor bias)
    {
        int rows = y.Size(0), cols = y.Size(1);
        if (IsF32(y))
        {
            var s = y.Span<float>(); var b = bias.Span<float>();
            for (int r = 0; r < rows; r++) System.Numerics.Tensors.TensorPrimitives.Add(s.Slice(r * cols, cols), b, s.Slice(r * cols, cols));
        }
        else
        {
            var s = y.Span<double>(); var b = bias.Span<double>();
            for (int r = 0; r < rows; r++) System.Numerics.Tensors.TensorPrimitives.Add(s.Slice(r * cols, cols), b, s.Slice(r * cols, cols));
        }
    }

    private static void Gemm_(Tensor a, bool ta, Tensor b, bool tb, Tensor c, int m, int n, int k, bool accumulate)
    {
        if (IsF32(c)) Gemm.Multiply<float>(ta, tb, m, n, k, a.Span<float>(), b.Span<float>(), c.Span<float>(), accumulate);
        else Gemm.Multiply<double>(ta, tb, m, n, k, a.Span<double>(), b.Span<double>(), c.Span<double>(), accumulate);
    }
}
