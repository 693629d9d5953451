using MLNet.FastTrain.Engine.Modules;
using Xunit;
using F = MLNet.FastTrain.Engine.Functional;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>
/// The fused batch-norm + residual + ReLU op against the three ops run in turn, in float32 at training sizes (the
/// float64 gradient checks cover its calculus on small shapes).
/// </summary>
public class BatchNormFusionTests
{
    private static Tensor Leaf(int[] shape, ulong seed, double mean = 0)
    {
        var t = Tensor.Normal(shape, mean, 1.5, new Generator(seed));
        t.RequiresGrad = true;
        return t;
    }

    private static void Close(Tensor expected, Tensor actual, double tolerance)
    {
        var e = expected.ToArray();
        var a = actual.ToArray();
        Assert.Equal(e.Length, a.Length);
        double scale = e.Max(v => Math.Abs(v));
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= tolerance * scale, $"element {i}: expected {e[i]}, got {a[i]}");
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void Fused_op_matches_batch_norm_then_add_then_relu(bool training, bool withResidual)
    {
        int[] shape = [8, 16, 13, 11];                                            // planes that are not whole vectors
        var (xa, xb) = (Leaf(shape, 1, mean: 0.7), Leaf(shape, 1, mean: 0.7));
        var (wa, wb) = (Leaf([16], 2, mean: 1), Leaf([16], 2, mean: 1));
        var (ba, bb) = (Leaf([16], 3), Leaf([16], 3));
        var (ra, rb) = (Leaf(shape, 4), Leaf(shape, 4));
        var (ma, mb) = (Tensor.Normal([16], 0, 0.3, new Generator(5)), Tensor.Normal([16], 0, 0.3, new Generator(5)));
        var (va, vb) = (Tensor.Uniform([16], 0.5, 2, new Generator(6)), Tensor.Uniform([16], 0.5, 2, new Generator(6)));
        var upstream = Tensor.Normal(shape, 0, 1, new Generator(7));

        var z = F.BatchNorm2d(xa, ma, va, wa, ba, training, momentum: 0.1);
        var separate = F.Relu(withResidual ? z + ra : z);
        var fused = F.BatchNorm2dRelu(xb, mb, vb, wb, bb, training, momentum: 0.1, residual: withResidual ? rb : null);
        Assert.Equal(separate.ToArray(), fused.ToArray());                        // same arithmetic in the same order
        Assert.Contains(fused.ToArray(), v => v == 0);                            // the ReLU is active somewhere
        Assert.Equal(ma.ToArray(), mb.ToArray());
        Assert.Equal(va.ToArray(), vb.ToArray());

        (separate * upstream).Sum().Backward();
        (fused * upstream).Sum().Backward();
        Close(xa.Grad!, xb.Grad!, 1e-5);
        Close(wa.Grad!, wb.Grad!, 1e-5);
        Close(ba.Grad!, bb.Grad!, 1e-5);
        if (withResidual) Assert.Equal(ra.Grad!.ToArray(), rb.Grad!.ToArray()); // g where the output is positive
        else Assert.Null(rb.Grad);
    }

    [Fact]
    public void Sequential_fuses_batch_norm_and_relu_without_changing_values_or_gradients()
    {
        var fusedNet = new Sequential(new Conv2d(3, 8, 3, padding: 1, generator: new Generator(1)), new BatchNorm2d(8), new ReLU(), new Flatten());
        var conv = new Conv2d(3, 8, 3, padding: 1, generator: new Generator(1));
        var bn = new BatchNorm2d(8);
        var x = Tensor.Normal([4, 3, 6, 6], 0, 1, new Generator(2));
        var upstream = Tensor.Normal([4, 8 * 36], 0, 1, new Generator(3));

        var y = fusedNet.Forward(x);
        var expected = F.Flatten(F.Relu(bn.Forward(conv.Forward(x))));
        Assert.Equal(expected.ToArray(), y.ToArray());
        Assert.Equal(bn.RunningMean.ToArray(), ((BatchNorm2d)fusedNet[1]).RunningMean.ToArray());

        (y * upstream).Sum().Backward();
        (expected * upstream).Sum().Backward();
        Close(conv.Weight.Grad!, ((Conv2d)fusedNet[0]).Weight.Grad!, 1e-5);
        Close(bn.Weight!.Grad!, ((BatchNorm2d)fusedNet[1]).Weight!.Grad!, 1e-5);
    }

    [Fact]
    public void Replaced_children_are_run_after_a_fused_forward()
    {
        var net = new Sequential(new BatchNorm2d(2), new ReLU());
        var x = Tensor.Normal([2, 2, 3, 3], 0, 1, new Generator(4));
        Assert.All(net.Forward(x).ToArray(), v => Assert.True(v >= 0));
        net.ReplaceChild("1", new Identity());                                    // no ReLU any more: negatives survive
        Assert.Contains(net.Forward(x).ToArray(), v => v < 0);
    }

    [Fact]
    public void A_residual_of_another_shape_is_refused_naming_both_shapes()
    {
        var x = Tensor.Normal([2, 3, 4, 4], 0, 1, new Generator(1));
        var e = Assert.Throws<ShapeMismatchException>(() => F.BatchNorm2dRelu(x, null, null, null, null, training: true, residual: Tensor.Zeros(2, 3, 4, 5)));
        Assert.Contains("[2, 3, 4, 5]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 3, 4, 4]", e.Message, StringComparison.Ordinal);
    }
}
