using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Autograd;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>The sum of all elements, as a rank-0 tensor.</summary>
    public static Tensor Sum(Tensor x)
    {
        var y = Tensor.Zeros([], x.DType);
        if (IsF32(x)) y.Span<float>()[0] = TensorPrimitives.Sum<float>(x.Span<float>());
        else y.Span<double>()[0] = TensorPrimitives.Sum<double>(x.Span<double>());
        return GradRecorder.Record(y, "sum", [x], g => [Tensor.Full(x.ShapeArray(), g.Item(), g.DType)]);
    }

    /// <summary>The mean of all elements, as a rank-0 tensor.</summary>
    public static Tensor Mean(Tensor x) => MulScalar(Sum(x), 1.0 / Math.Max(1, x.Length));

    /// <summary>The sum along <paramref name="dim"/>.</summary>
    public static Tensor Sum(Tensor x, int dim, bool keepDim = false)
    {
        int d = Tensor.NormalizeDim(dim, x.Rank);
        var (outer, size, inner) = Split(x.ShapeRef, d);
        Span<int> kept = stackalloc int[x.Rank];
        x.Shape.CopyTo(kept);
        kept[d] = 1;
        var y = Tensor.Zeros(kept, x.DType);
        if (IsF32(x)) SumKernel<float>(x.Span<float>(), y.Span<float>(), outer, size, inner);
        else SumKernel<double>(x.Span<double>(), y.Span<double>(), outer, size, inner);
        Tensor result = y;
        if (!keepDim)
        {
            Span<int> dropped = stackalloc int[x.Rank - 1];
            for (int i = 0, j = 0; i < x.Rank; i++) if (i != d) dropped[j++] = x.Size(i);
            result = y.Reshape(dropped);
        }
        return GradRecorder.Record(result, "sum_dim", [x], (x.ShapeRef, y.ShapeRef), static (s, g, grads) =>
        {
            // Broadcast the gradient back along the reduced dimension.
            var (xShape, keptShape) = s;
            grads[0] = Add(Tensor.Zeros(xShape, g.DType), g.Reshape(keptShape));
        });
    }

    /// <summary>The mean along <paramref name="dim"/>.</summary>
    public static Tensor Mean(Tensor x, int dim, bool keepDim = false) =>
        MulScalar(Sum(x, dim, keepDim), 1.0 / Math.Max(1, x.Size(dim)));

    /// <summary>The largest value along <paramref name="dim"/> and its index (the first on ties).</summary>
    public static (Tensor Values, int[] Indices) Max(Tensor x, int dim, bool keepDim = false)
    {
        int d = Tensor.NormalizeDim(dim, x.Rank);
        var (outer, size, inner) = Split(x.ShapeRef, d);
        if (size == 0) throw new ArgumentException($"Max over an empty dimension {d} of shape {ShapeText.Format(x.Shape)}.", nameof(dim));
        var keptShape = (int[])x.ShapeRef.Clone();
        keptShape[d] = 1;
        var values = Tensor.Zeros(keptShape, x.DType);
        var indices = new int[outer * inner];
        for (int o = 0; o < outer; o++)
        {
            for (int i = 0; i < inner; i++)
            {
                int best = 0;
                double bestValue = x.GetFlat(o * size * inner + i);
                for (int s = 1; s < size; s++)
                {
                    double v = x.GetFlat((o * size + s) * inner + i);
                    if (v > bestValue || (double.IsNaN(v) && !double.IsNaN(bestValue))) { bestValue = v; best = s; }
                }
                indices[o * inner + i] = best;
                values.SetFlat(o * inner + i, bestValue);
            }
        }
        var result = keepDim ? values : values.Reshape(DropDim(x.ShapeRef, d));
        var xShape = x.ShapeArray();
        var y = GradRecorder.Record(result, "max_dim", [x], g =>
        {
            var gx = Tensor.Zeros(xShape, g.DType);
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                    gx.SetFlat((o * size + indices[o * inner + i]) * inner + i, g.GetFlat(o * inner + i));
            return [gx];
        });
        return (y, indices);
    }

    /// <summary>The index of the largest value along <paramref name="dim"/> (the first on ties), flattened over the other dimensions.</summary>
    public static int[] Argmax(Tensor x, int dim = -1)
    {
        using var _ = GradRecorder.NoGrad();
        return Max(x.Detach(), dim).Indices;
    }

    private static void SumKernel<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int size, int inner)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                y[o] = TensorPrimitives.Sum(x.Slice(o * size, size));
                continue;
            }
            var dst = y.Slice(o * inner, inner);
            for (int s = 0; s < size; s++) TensorPrimitives.Add(dst, x.Slice((o * size + s) * inner, inner), dst);
        }
    }

    /// <summary>Splits a shape around one dimension into (product before, size, product after).</summary>
    internal static (int Outer, int Size, int Inner) Split(ReadOnlySpan<int> shape, int dim)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < dim; i++) outer *= shape[i];
        for (int i = dim + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, shape[dim], inner);
    }

    private static int[] DropDim(int[] shape, int dim)
    {
        var result = new int[shape.Length - 1];
        for (int i = 0, j = 0; i < shape.Length; i++) if (i != dim) result[j++] = shape[i];
        return result;
    }
}
