using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Kernels;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>a + b with NumPy broadcasting.</summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        var y = Binary<AddOperator>(a, b, "add");
        return GradRecorder.Record(y, "add", [a, b], (a.ShapeRef, b.ShapeRef), static (s, g, grads) =>
            (grads[0], grads[1]) = (SumToShape(g, s.Item1), SumToShape(g, s.Item2)));
    }

    /// <summary>a - b with NumPy broadcasting.</summary>
    public static Tensor Sub(Tensor a, Tensor b)
    {
        var y = Binary<SubtractOperator>(a, b, "sub");
        return GradRecorder.Record(y, "sub", [a, b], g => [SumToShape(g, a.ShapeRef), SumToShape(Neg(g), b.ShapeRef)]);
    }

    /// <summary>a · b elementwise with NumPy broadcasting.</summary>
    public static Tensor Mul(Tensor a, Tensor b)
    {
        var y = Binary<MultiplyOperator>(a, b, "mul");
        return GradRecorder.Record(y, "mul", [a, b], g =>
        [
            a.RequiresGrad ? SumToShape(Mul(g, b.Detach()), a.ShapeRef) : null,
            b.RequiresGrad ? SumToShape(Mul(g, a.Detach()), b.ShapeRef) : null,
        ]);
    }

    /// <summary>a / b elementwise with NumPy broadcasting.</summary>
    public static Tensor Div(Tensor a, Tensor b)
    {
        var y = Binary<DivideOperator>(a, b, "div");
        return GradRecorder.Record(y, "div", [a, b], g =>
        [
            a.RequiresGrad ? SumToShape(Div(g, b.Detach()), a.ShapeRef) : null,
            // d(a/b)/db = -a/b² = -y/b
            b.RequiresGrad ? SumToShape(Neg(Div(Mul(g, y.Detach()), b.Detach())), b.ShapeRef) : null,
        ]);
    }

    /// <summary>x · s for a scalar s.</summary>
    public static Tensor MulScalar(Tensor x, double s)
    {
        var y = Tensor.EmptyLike(x);
        if (IsF32(x)) TensorPrimitives.Multiply(x.Span<float>(), (float)s, y.Span<float>());
        else TensorPrimitives.Multiply(x.Span<double>(), s, y.Span<double>());
        return GradRecorder.Record(y, "mul_scalar", [x], g => [MulScalar(g, s)]);
    }

    /// <summary>x + s for a scalar s.</summary>
    public static Tensor AddScalar(Tensor x, double s)
    {
        var y = Tensor.EmptyLike(x);
        if (IsF32(x)) TensorPrimitives.Add(x.Span<float>(), (float)s, y.Span<float>());
        else TensorPrimitives.Add(x.Span<double>(), s, y.Span<double>());
        return GradRecorder.Record(y, "add_scalar", [x], g => [g]);
    }

    /// <summary>-x.</summary>
    public static Tensor Neg(Tensor x) => MulScalar(x, -1.0);

    /// <summary>Adds <paramref name="source"/> into <paramref name="target"/> in place (same shape); not recorded.</summary>
    internal static void AddInPlace(Tensor target, Tensor source)
    {
        if (!target.Shape.SequenceEqual(source.Shape)) throw ShapeMismatchException.For("add_", "shapes differ", target.Shape, source.Shape);
        CheckSameDType("add_", target, source);
        if (IsF32(target)) TensorPrimitives.Add(target.Span<float>(), source.Span<float>(), target.Span<float>());
        else TensorPrimitives.Add(target.Span<double>(), source.Span<double>(), target.Span<double>());
    }

    /// <summary>Sums a broadcast gradient back down to the shape of the operand it was broadcast from.</summary>
    internal static Tensor SumToShape(Tensor g, int[] shape)
    {
        if (g.Shape.SequenceEqual(shape)) return g;
        int lead = g.Rank - shape.Length;
        var r = g;
        for (int d = 0; d < g.Rank; d++)
        {
            bool broadcast = d < lead || (shape[d - lead] == 1 && g.Shape[d] != 1);
            if (broadcast) r = Sum(r, d, keepDim: true);
        }
        return r.Reshape(shape);
    }

    internal static int[] BroadcastShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string op)
    {
        var shape = new int[Math.Max(a.Length, b.Length)];
        BroadcastShape(a, b, op, shape);
        return shape;
    }

    /// <summary>Writes the broadcast shape of <paramref name="a"/> and <paramref name="b"/> (of the larger rank) into <paramref name="shape"/>.</summary>
    private static void BroadcastShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string op, Span<int> shape)
    {
        int rank = shape.Length;
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1) throw ShapeMismatchException.For(op, "shapes cannot be broadcast together", a, b);
            shape[i] = da == 1 ? db : da;
        }
    }

    private static Tensor Binary<TOp>(Tensor a, Tensor b, string op) where TOp : IBinaryOperator
    {
        CheckSameDType(op, a, b);
        int rank = Math.Max(a.Rank, b.Rank);
        Span<int> shape = rank <= 16 ? stackalloc int[rank] : new int[rank];
        BroadcastShape(a.Shape, b.Shape, op, shape);
        var y = Tensor.Empty(shape, a.DType);
        if (a.Shape.SequenceEqual(b.Shape))
        {
            // The common case (residual additions, gradients): split across cores.
            ParallelRanges.For(y.Length, ParallelRanges.ElementwiseGrain, (a, b, y), static (s, lo, hi) =>
            {
                if (IsF32(s.a)) TOp.Invoke(s.a.Span<float>()[lo..hi], s.b.Span<float>()[lo..hi], s.y.Span<float>()[lo..hi]);
                else TOp.Invoke(s.a.Span<double>()[lo..hi], s.b.Span<double>()[lo..hi], s.y.Span<double>()[lo..hi]);
            });
            return y;
        }
        if (IsF32(a)) BinaryKernel<float, TOp>(a, b, y); else BinaryKernel<double, TOp>(a, b, y);
        return y;
    }

    private static void BinaryKernel<T, TOp>(Tensor a, Tensor b, Tensor y)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IBinaryOperator
    {
        var sa = a.Span<T>();
        var sb = b.Span<T>();
        var sy = y.Span<T>();
        if (a.Shape.SequenceEqual(b.Shape)) { TOp.Invoke(sa, sb, sy); return; }
        if (sb.Length == 1) { TOp.Invoke(sa, sb[0], sy); return; }
        if (sa.Length == 1) { TOp.Invoke(sa[0], sb, sy); return; }

        // General case: walk the output one innermost row at a time; a broadcast operand has stride 0.
        int rank = y.Rank;
        var shape = y.ShapeRef;
        var strideA = BroadcastStrides(a.ShapeRef, rank);
        var strideB = BroadcastStrides(b.ShapeRef, rank);
        int inner = shape[rank - 1];
        int rows = sy.Length / Math.Max(inner, 1);
        var index = new int[rank];
        for (int row = 0; row < rows; row++)
        {
            int offA = 0, offB = 0;
            for (int d = 0; d < rank - 1; d++) { offA += index[d] * strideA[d]; offB += index[d] * strideB[d]; }
            var dst = sy.Slice(row * inner, inner);
            bool aRow = strideA[rank - 1] != 0, bRow = strideB[rank - 1] != 0;
            if (aRow && bRow) TOp.Invoke(sa.Slice(offA, inner), sb.Slice(offB, inner), dst);
            else if (aRow) TOp.Invoke(sa.Slice(offA, inner), sb[offB], dst);
            else if (bRow) TOp.Invoke(sa[offA], sb.Slice(offB, inner), dst);
            else dst.Fill(TOp.Invoke(sa[offA], sb[offB]));
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++index[d] < shape[d]) break;
                index[d] = 0;
            }
        }
    }

    private static int[] BroadcastStrides(int[] shape, int rank)
    {
        var strides = new int[rank];
        int stride = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[rank - shape.Length + i] = shape[i] == 1 ? 0 : stride;
            stride *= shape[i];
        }
        return strides;
    }

    private interface IBinaryOperator
    {
        static abstract T Invoke<T>(T x, T y) where T : unmanaged, IFloatingPointIeee754<T>;

        static abstract void Invoke<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;

        static abstract void Invoke<T>(ReadOnlySpan<T> x, T y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;

        static abstract void Invoke<T>(T x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>;
    }

    private readonly struct AddOperator : IBinaryOperator
    {
        public static T Invoke<T>(T x, T y) where T : unmanaged, IFloatingPointIeee754<T> => x + y;

        public static void Invoke<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(x, y, d);

        public static void Invoke<T>(ReadOnlySpan<T> x, T y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(x, y, d);

        public static void Invoke<T>(T x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Add(y, x, d);
    }

    private readonly struct SubtractOperator : IBinaryOperator
    {
        public static T Invoke<T>(T x, T y) where T : unmanaged, IFloatingPointIeee754<T> => x - y;

        public static void Invoke<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(x, y, d);

        public static void Invoke<T>(ReadOnlySpan<T> x, T y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(x, y, d);

        public static void Invoke<T>(T x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Subtract(x, y, d);
    }

    private readonly struct MultiplyOperator : IBinaryOperator
    {
        public static T Invoke<T>(T x, T y) where T : unmanaged, IFloatingPointIeee754<T> => x * y;

        public static void Invoke<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(x, y, d);

        public static void Invoke<T>(ReadOnlySpan<T> x, T y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(x, y, d);

        public static void Invoke<T>(T x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Multiply(y, x, d);
    }

    private readonly struct DivideOperator : IBinaryOperator
    {
        public static T Invoke<T>(T x, T y) where T : unmanaged, IFloatingPointIeee754<T> => x / y;

        public static void Invoke<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(x, y, d);

        public static void Invoke<T>(ReadOnlySpan<T> x, T y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(x, y, d);

        public static void Invoke<T>(T x, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => TensorPrimitives.Divide(x, y, d);
    }
}
