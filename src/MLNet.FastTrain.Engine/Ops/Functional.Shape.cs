using MLNet.FastTrain.Engine.Autograd;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>Merges dimensions <paramref name="startDim"/>… into one (a view).</summary>
    public static Tensor Flatten(Tensor x, int startDim = 1)
    {
        int s = Tensor.NormalizeDim(startDim, x.Rank);
        if (x.Length == 0) return x.Reshape(ShapeWithZero(x, s));
        Span<int> shape = stackalloc int[s + 1];
        for (int i = 0; i < s; i++) shape[i] = x.Size(i);
        shape[s] = -1;
        return x.Reshape(shape);
    }

    private static int[] ShapeWithZero(Tensor x, int s)
    {
        var shape = new int[s + 1];
        int rest = 1;
        for (int i = 0; i < x.Rank; i++) if (i < s) shape[i] = x.Size(i); else rest *= x.Size(i);
        shape[s] = rest;
        return shape;
    }

    /// <summary>Joins tensors along <paramref name="dim"/>; all other dimensions must agree.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException("concat needs at least one tensor.", nameof(tensors));
        var first = tensors[0];
        int d = Tensor.NormalizeDim(dim, first.Rank);
        int total = 0;
        foreach (var t in tensors)
        {
            CheckSameDType("concat", first, t);
            if (t.Rank != first.Rank) throw ShapeMismatchException.For("concat", "ranks differ", first.Shape, t.Shape);
            for (int i = 0; i < t.Rank; i++)
                if (i != d && t.Size(i) != first.Size(i)) throw ShapeMismatchException.For("concat", $"sizes differ outside dimension {d}", first.Shape, t.Shape);
            total += t.Size(d);
        }
        var shape = first.ShapeArray();
        shape[d] = total;
        var y = Tensor.Zeros(shape, first.DType);
        var (outer, _, inner) = Split(shape, d);
        int offset = 0;
        var offsets = new int[tensors.Count];
        for (int k = 0; k < tensors.Count; k++)
        {
            var t = tensors[k];
            int size = t.Size(d);
            offsets[k] = offset;
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < size * inner; j++)
                    y.SetFlat((o * total + offset) * inner + j, t.GetFlat(o * size * inner + j));
            offset += size;
        }
        var inputs = tensors.ToArray();
        return GradRecorder.Record(y, "concat", inputs, g =>
        {
            var grads = new Tensor?[inputs.Length];
            for (int k = 0; k < inputs.Length; k++)
            {
                var t = inputs[k];
                if (!t.RequiresGrad) continue;
                int size = t.Size(d);
                var gt = Tensor.ZerosLike(t);
                for (int o = 0; o < outer; o++)
                    for (int j = 0; j < size * inner; j++)
                        gt.SetFlat(o * size * inner + j, g.GetFlat((o * total + offsets[k]) * inner + j));
                grads[k] = gt;
            }
            return grads;
        });
    }

    /// <summary>The transpose of a matrix (a copy).</summary>
    public static Tensor Transpose(Tensor x)
    {
        CheckRank("transpose", "input", x, 2);
        int rows = x.Size(0), cols = x.Size(1);
        var y = Tensor.Zeros([cols, rows], x.DType);
        if (IsF32(x)) Kernels.Gemm.Transpose<float>(x.Span<float>(), cols, rows, y.Span<float>());
        else Kernels.Gemm.Transpose<double>(x.Span<double>(), cols, rows, y.Span<double>());
        return GradRecorder.Record(y, "transpose", [x], g => [Transpose(g)]);
    }

    /// <summary>
    /// Inverted dropout: in training each element is zeroed with probability p and the rest are scaled by
    /// 1 / (1 − p), so evaluation needs no rescaling.
    /// </summary>
    public static Tensor Dropout(Tensor x, double p, bool training, Generator? generator = null)
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), $"dropout probability must be in [0, 1], not {p}.");
        if (!training || p == 0) return x;
        var gen = generator ?? Generator.Default;
        var mask = Tensor.ZerosLike(x);
        double keep = p >= 1 ? 0 : 1.0 / (1 - p);
        for (int i = 0; i < mask.Length; i++) mask.SetFlat(i, gen.NextDouble() >= p ? keep : 0.0);
        var y = Mul(x.Detach(), mask);
        return GradRecorder.Record(y, "dropout", [x], g => [Mul(g, mask)]);
    }
}
