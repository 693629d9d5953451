using MLNet.FastTrain.Engine.Autograd;
using Xunit;
using F = MLNet.FastTrain.Engine.Functional;

namespace MLNet.FastTrain.Engine.Tests;

public class AutogradTests
{
    private static Tensor Leaf(params float[] values)
    {
        var t = Tensor.FromArray(values);
        t.RequiresGrad = true;
        return t;
    }

    [Fact]
    public void Chain_rule_by_hand()
    {
        // y = sum((a·b + a)²) at a = 2, b = 3: dy/da = 2(ab + a)(b + 1) = 2·8·4 = 64, dy/db = 2(ab + a)·a = 32.
        var a = Leaf(2);
        var b = Leaf(3);
        var u = a * b + a;
        (u * u).Sum().Backward();
        Assert.Equal(64f, a.Grad!.AsSpan()[0]);
        Assert.Equal(32f, b.Grad!.AsSpan()[0]);
    }

    [Fact]
    public void Gradients_accumulate_until_cleared()
    {
        var a = Leaf(1, 2);
        (a * 3.0).Sum().Backward();
        (a * 3.0).Sum().Backward();
        Assert.Equal(new float[] { 6, 6 }, a.Grad!.ToArray());
        a.Grad = null;
        (a * 3.0).Sum().Backward();
        Assert.Equal(new float[] { 3, 3 }, a.Grad!.ToArray());
    }

    [Fact]
    public void A_tensor_used_twice_gets_both_contributions()
    {
        var a = Leaf(3);
        var b = a * 2.0;
        (b * b + b).Sum().Backward(); // d/da (4a² + 2a) = 8a + 2 = 26
        Assert.Equal(26f, a.Grad!.AsSpan()[0]);
    }

    [Fact]
    public void No_grad_scope_records_nothing()
    {
        var a = Leaf(1);
        Tensor y;
        using (GradRecorder.NoGrad())
        {
            Assert.False(GradRecorder.IsEnabled);
            y = a * 2.0;
        }
        Assert.True(GradRecorder.IsEnabled);
        Assert.False(y.RequiresGrad);
        Assert.True(y.IsLeaf);
        Assert.Throws<InvalidOperationException>(() => y.Sum().Backward());
    }

    [Fact]
    public void Detach_cuts_the_graph_and_shares_storage()
    {
        var a = Leaf(1, 2);
        var d = (a * 2.0).Detach();
        Assert.False(d.RequiresGrad);
        var b = Leaf(5, 5);
        (d * b + a).Sum().Backward();
        Assert.Equal(new float[] { 1, 1 }, a.Grad!.ToArray());
        Assert.Equal(new float[] { 2, 4 }, b.Grad!.ToArray());
    }

    [Fact]
    public void Backward_of_a_non_scalar_needs_a_gradient()
    {
        var a = Leaf(1, 2);
        var e = Assert.Throws<InvalidOperationException>(() => (a * 2.0).Backward());
        Assert.Contains("[2]", e.Message, StringComparison.Ordinal);
        var wrong = Assert.Throws<ShapeMismatchException>(() => (a * 2.0).Backward(Tensor.Ones(3)));
        Assert.Contains("[3]", wrong.Message, StringComparison.Ordinal);
        (a * 2.0).Backward(Tensor.FromArray(new float[] { 1, 10 }));
        Assert.Equal(new float[] { 2, 20 }, a.Grad!.ToArray());
    }

    [Fact]
    public void Results_require_grad_only_when_an_input_does()
    {
        var a = Tensor.Ones(2);
        var b = Leaf(1, 1);
        Assert.False((a * a).RequiresGrad);
        var c = a * b;
        Assert.True(c.RequiresGrad);
        Assert.False(c.IsLeaf);
        Assert.Throws<InvalidOperationException>(() => c.RequiresGrad = false);
    }

    [Fact]
    public void Gradient_reaches_a_leaf_through_views()
    {
        var a = Leaf(1, 2, 3, 4, 5, 6);
        var rows = a.Reshape(3, 2).Narrow(1, 2);
        (rows * 2.0).Sum().Backward();
        Assert.Equal(new float[] { 0, 0, 2, 2, 2, 2 }, a.Grad!.ToArray());
    }

    [Fact]
    public void Anomaly_detection_names_the_operation_that_made_a_nan()
    {
        var a = Leaf(-1, 2);
        using (GradRecorder.DetectAnomaly())
        {
            var e = Assert.Throws<NonFiniteValueException>(() => F.Log(a));
            Assert.Equal("log", e.Operation);
            Assert.False(e.InBackward);
            Assert.Contains("log", e.Message, StringComparison.Ordinal);
        }
        // Without the switch the NaN flows on silently, as in torch.
        Assert.True(float.IsNaN(F.Log(a).AsSpan()[0]));
    }

    [Fact]
    public void Anomaly_detection_names_a_backward_that_made_an_infinity()
    {
        // 1/x at x = 1e-20 is 1e20, finite in float32; its gradient −1/x² = −1e40 is not.
        var x = Leaf(1e-20f);
        var y = (Tensor.Ones(1) / x).Sum();
        Assert.True(float.IsFinite((float)y.Item()));
        using (GradRecorder.DetectAnomaly())
        {
            var e = Assert.Throws<NonFiniteValueException>(() => y.Backward());
            Assert.True(e.InBackward);
            Assert.Equal("div", e.Operation);
            Assert.StartsWith("backward of div", e.Message, StringComparison.Ordinal);
        }
    }
}
