using System.Globalization;
using MLNet.FastTrain.TestUtilities;
using Xunit;
using F = MLNet.FastTrain.Engine.Functional;

namespace MLNet.FastTrain.Engine.Tests;

[Trait("Category", "Kernel")]
public class TensorTests
{
    [Fact]
    public void Creation_sets_shape_length_and_values()
    {
        var z = Tensor.Zeros(2, 3, 4);
        Assert.Equal(new[] { 2, 3, 4 }, z.ShapeArray());
        Assert.Equal(24, z.Length);
        Assert.All(z.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(Tensor.Ones(5).ToArray(), v => Assert.Equal(1f, v));
        Assert.All(Tensor.Full([2, 2], 3.5, DType.Float64).ToDoubleArray(), v => Assert.Equal(3.5, v));
        Assert.Equal(0, Tensor.Scalar(2).Rank);
        Assert.Equal(2.0, Tensor.Scalar(2).Item());
        Assert.Equal(new float[] { 0, 1, 2, 3 }, Tensor.Arange(4).ToArray());
    }

    [Fact]
    public void FromArray_copies_and_checks_the_element_count()
    {
        var data = new float[] { 1, 2, 3, 4, 5, 6 };
        var t = Tensor.FromArray(data, 2, 3);
        data[0] = 100;
        Assert.Equal(1.0, t[0, 0]);
        Assert.Equal(6.0, t[1, 2]);
        var e = Assert.Throws<ShapeMismatchException>(() => Tensor.FromArray(new float[5], 2, 3));
        Assert.Contains("[2, 3]", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, Tensor.FromArray(new float[] { 1, 2 }).Rank);
        Assert.Equal(0, Tensor.FromArray(new float[] { 7 }, []).Rank);
    }

    [Fact]
    public void Negative_dimensions_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Zeros(2, -1));
    }

    [Fact]
    public void Indexer_reads_writes_and_names_bad_indices()
    {
        var t = Tensor.Zeros(2, 3);
        t[1, 2] = 7;
        Assert.Equal(7f, t.AsSpan()[5]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t[2, 0]);
        Assert.Contains("[2, 3]", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => t[1]);
    }

    [Fact]
    public void Reshape_shares_storage_and_infers_one_dimension()
    {
        var t = Tensor.Arange(12);
        var r = t.Reshape(3, -1);
        Assert.Equal(new[] { 3, 4 }, r.ShapeArray());
        r[0, 1] = 42;
        Assert.Equal(42.0, t[1]);
    }

    [Fact]
    public void Reshape_to_a_wrong_size_names_both_shapes()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(2, 6).Reshape(5, 3));
        Assert.Contains("[2, 6]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[5, 3]", e.Message, StringComparison.Ordinal);
        Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(2, 6).Reshape(-1, -1));
        Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(2, 6).Reshape(5, -1));
    }

    [Fact]
    public void Narrow_is_a_view_of_rows()
    {
        var t = Tensor.Arange(12).Reshape(4, 3);
        var rows = t.Narrow(1, 2);
        Assert.Equal(new[] { 2, 3 }, rows.ShapeArray());
        Assert.Equal(new float[] { 3, 4, 5, 6, 7, 8 }, rows.ToArray());
        rows[0, 0] = -1;
        Assert.Equal(-1.0, t[1, 0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Narrow(3, 2));
    }

    [Fact]
    public void Dtype_conversion_round_trips()
    {
        var t = Tensor.FromArray(new float[] { 1.5f, -2.25f });
        var d = t.To(DType.Float64);
        Assert.Equal(DType.Float64, d.DType);
        Assert.Equal(new[] { 1.5, -2.25 }, d.ToDoubleArray());
        Assert.Same(t, t.To(DType.Float32));
        Assert.Throws<InvalidOperationException>(() => d.AsSpan());
        Assert.Throws<InvalidOperationException>(() => t.AsDoubleSpan());
    }

    [Fact]
    public void Mixed_dtypes_are_an_error()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.Ones(2) + Tensor.Ones([2], DType.Float64));
        Assert.Contains("Float64", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<int[], int[]> BroadcastShapes => new()
    {
        { new[] { 3, 4 }, new[] { 3, 4 } },
        { new[] { 3, 4 }, new[] { 4 } },
        { new[] { 3, 1 }, new[] { 1, 4 } },
        { new[] { 2, 3, 4 }, new[] { 3, 1 } },
        { new[] { 1 }, new[] { 2, 5 } },
        { new[] { 2, 1, 3, 1 }, new[] { 4, 1, 5 } },
        { new[] { 2, 3, 2, 2 }, new[] { 1, 3, 1, 1 } },
        { new int[0], new[] { 2, 2 } },
    };

    [Theory]
    [MemberData(nameof(BroadcastShapes))]
    public void Broadcast_arithmetic_matches_an_index_by_index_reference(int[] shapeA, int[] shapeB)
    {
        var a = Tensor.Normal(shapeA, generator: new Generator(1));
        var b = Tensor.Uniform(shapeB, 0.5, 2, new Generator(2));
        var outShape = F.BroadcastShape(shapeA, shapeB, "test");
        foreach (var (op, scalar) in new (Func<Tensor, Tensor, Tensor>, Func<double, double, double>)[]
        {
            ((x, y) => x + y, (x, y) => x + y), ((x, y) => x - y, (x, y) => x - y),
            ((x, y) => x * y, (x, y) => x * y), ((x, y) => x / y, (x, y) => x / y),
        })
        {
            var result = op(a, b);
            Assert.Equal(outShape, result.ShapeArray());
            var index = new int[outShape.Length];
            for (int flat = 0; flat < result.Length; flat++)
            {
                int rem = flat;
                for (int d = outShape.Length - 1; d >= 0; d--) { index[d] = rem % outShape[d]; rem /= outShape[d]; }
                double expected = scalar(At(a, index), At(b, index));
                Assert.True(Math.Abs(expected - result.GetFlat(flat)) <= 1e-6 * (1 + Math.Abs(expected)), $"element {flat}: {result.GetFlat(flat)} vs {expected}");
            }
        }
    }

    private static double At(Tensor t, int[] outIndex)
    {
        // Index a broadcast operand: align right, use 0 on size-1 dimensions.
        int flat = 0, lead = outIndex.Length - t.Rank;
        for (int d = 0; d < t.Rank; d++) flat = flat * t.Size(d) + (t.Size(d) == 1 ? 0 : outIndex[lead + d]);
        return t.GetFlat(flat);
    }

    [Fact]
    public void Incompatible_broadcast_names_both_shapes()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(2, 3) + Tensor.Zeros(4));
        Assert.Contains("[2, 3]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[4]", e.Message, StringComparison.Ordinal);
        Assert.Contains("add", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(-1)]
    public void Sum_and_mean_along_a_dimension_match_loops(int dim)
    {
        var t = Tensor.Normal([3, 4, 5], generator: new Generator(3), dtype: DType.Float64);
        var s = t.Sum(dim);
        var m = t.Mean(dim, keepDim: true);
        int d = dim < 0 ? dim + 3 : dim;
        var shape = t.ShapeArray();
        Assert.Equal(2, s.Rank);
        Assert.Equal(3, m.Rank);
        var idx = new int[3];
        for (idx[0] = 0; idx[0] < 3; idx[0]++)
            for (idx[1] = 0; idx[1] < 4; idx[1]++)
                for (idx[2] = 0; idx[2] < 5; idx[2]++)
                {
                    if (idx[d] != 0) continue;
                    double sum = 0;
                    var j = (int[])idx.Clone();
                    for (j[d] = 0; j[d] < shape[d]; j[d]++) sum += t[j];
                    var keep = (int[])idx.Clone();
                    Assert.Equal(sum / shape[d], m[keep], 12);
                    var drop = idx.Where((_, k) => k != d).ToArray();
                    Assert.Equal(sum, s[drop], 12);
                }
    }

    [Fact]
    public void Sum_and_mean_of_all_elements()
    {
        var t = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 2);
        Assert.Equal(10.0, t.Sum().Item());
        Assert.Equal(2.5, t.Mean().Item());
    }

    [Fact]
    public void Max_and_argmax_take_the_first_maximum()
    {
        var t = Tensor.FromArray(new float[] { 1, 5, 5, 2, 9, 0, 3, 3, 3 }, 3, 3);
        var (values, indices) = F.Max(t, 1);
        Assert.Equal(new float[] { 5, 9, 3 }, values.ToArray());
        Assert.Equal(new[] { 1, 1, 0 }, indices);
        Assert.Equal(new[] { 1, 1, 0 }, t.Argmax());
        Assert.Equal(new[] { 2, 1, 0 }, t.Argmax(0));
    }

    [Fact]
    public void ToString_is_culture_invariant()
    {
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = new CultureInfo("de-DE");
            Assert.Contains("1.5", Tensor.FromArray(new float[] { 1.5f }).ToString(), StringComparison.Ordinal);
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }

    [Fact]
    public void CopyFrom_checks_shapes()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(2, 2).CopyFrom(Tensor.Zeros(4)));
        Assert.Contains("[4]", e.Message, StringComparison.Ordinal);
    }
}

public class GeneratorTests
{
    [Fact]
    public void Same_seed_same_sequence_and_state_restores_exactly()
    {
        var a = new Generator(42);
        var b = new Generator(42);
        for (int i = 0; i < 10; i++) Assert.Equal(a.NextUInt64(), b.NextUInt64());
        var state = a.GetState();
        var first = Enumerable.Range(0, 5).Select(_ => a.NextNormal()).ToArray();
        a.SetState(state);
        var again = Enumerable.Range(0, 5).Select(_ => a.NextNormal()).ToArray();
        Assert.Equal(first, again);
        Assert.NotEqual(new Generator(1).NextUInt64(), new Generator(2).NextUInt64());
    }

    [Fact]
    public void Normal_and_uniform_have_the_right_moments()
    {
        var n = Tensor.Normal([20000], 1.0, 2.0, new Generator(7), DType.Float64).ToDoubleArray();
        double mean = n.Average(), std = Math.Sqrt(n.Select(v => (v - mean) * (v - mean)).Average());
        Assert.InRange(mean, 0.95, 1.05);
        Assert.InRange(std, 1.95, 2.05);
        var u = Tensor.Uniform([20000], -1, 3, new Generator(8), DType.Float64).ToDoubleArray();
        Assert.InRange(u.Min(), -1, -0.99);
        Assert.InRange(u.Max(), 2.99, 3);
        Assert.InRange(u.Average(), 0.97, 1.03);
    }

    [Fact]
    public void NextInt_stays_in_range_and_shuffle_is_a_permutation()
    {
        var g = new Generator(3);
        var counts = new int[5];
        for (int i = 0; i < 5000; i++) counts[g.NextInt(5)]++;
        Assert.All(counts, c => Assert.InRange(c, 850, 1150));
        var items = Enumerable.Range(0, 50).ToArray();
        g.Shuffle<int>(items);
        Assert.Equal(Enumerable.Range(0, 50), items.Order());
        Assert.NotEqual(Enumerable.Range(0, 50), items);
        Assert.Throws<ArgumentException>(() => g.SetState(new ulong[] { 0, 0, 0, 0 }));
    }
}
