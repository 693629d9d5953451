using System.Numerics;

namespace MLNet.FastTrain.Engine;

/// <summary>
/// The differentiable operations of the engine, in the style of <c>torch.nn.functional</c>. Each operation's
/// backward rule is written right under its forward, in the same file.
/// </summary>
/// <remarks>
/// Every operation accepts <see cref="DType.Float32"/> and <see cref="DType.Float64"/> tensors. The arithmetic is
/// written once, generic over the element type; float64 exists so gradients can be checked by central
/// differences in double precision.
/// </remarks>
public static partial class Functional
{
    private static void CheckSameDType(string op, Tensor a, Tensor b)
    {
        if (a.DType != b.DType) throw new ArgumentException($"{op}: operands have different dtypes ({a.DType} and {b.DType}); convert one with To().");
    }

    private static void CheckRank(string op, string argument, Tensor t, int rank)
    {
        if (t.Rank != rank) throw new ShapeMismatchException($"{op}: {argument} must have rank {rank}; its shape is {ShapeText.Format(t.Shape)}.");
    }

    private static bool IsF32(Tensor t) => t.DType == DType.Float32;

    /// <summary>A work array that lives as long as the step's tensors (pooled inside a <see cref="TensorScope"/>).</summary>
    private static double[] ScopedDoubles(int length) => (double[])TensorScope.Allocate(length, DType.Float64, clear: false);

    private static T C<T>(double v) where T : INumberBase<T> => T.CreateTruncating(v);
}
