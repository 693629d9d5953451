using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>
/// What makes a steady-state step allocation-free: scopes that reuse tensor objects, pooled autograd nodes and
/// shared shape arrays; and that none of it changes a result or hides a use of released memory.
/// </summary>
public class TensorReuseTests
{
    [Fact]
    public void A_reusing_scope_hands_out_the_object_the_previous_one_released_and_it_comes_back_clean()
    {
        var x = Tensor.FromArray([1f, -2f, 3f]);
        x.RequiresGrad = true;
        Tensor first;
        using (TensorScope.Begin(reuseTensorObjects: true))
        {
            first = Functional.Relu(Functional.MulScalar(x, 2));
            Assert.NotNull(first.GradFn);
        }
        Assert.True(first.IsReleased);

        using (TensorScope.Begin(reuseTensorObjects: true))
        {
            var second = Tensor.Zeros([2, 2], DType.Float64);
            Assert.Same(first, second);                                            // the last one released, taken first
            Assert.False(second.IsReleased);
            Assert.Equal(new[] { 2, 2 }, second.ShapeArray());
            Assert.Equal(DType.Float64, second.DType);
            Assert.Equal(4, second.Length);
            Assert.Null(second.GradFn);
            Assert.Null(second.Grad);
            Assert.False(second.RequiresGrad);
            Assert.All(second.ToDoubleArray(), v => Assert.Equal(0.0, v));
        }
    }

    [Fact]
    public void A_plain_scope_neither_gives_its_objects_for_reuse_nor_takes_reused_ones()
    {
        Tensor pooled;
        using (TensorScope.Begin(reuseTensorObjects: true)) pooled = Tensor.Zeros(3);   // now waiting for reuse
        Tensor plain;
        using (TensorScope.Begin())
        {
            plain = Tensor.Zeros(3);
            Assert.NotSame(pooled, plain);
        }
        using (TensorScope.Begin(reuseTensorObjects: true))
        {
            var next = Tensor.Zeros(3);
            Assert.Same(pooled, next);
            Assert.NotSame(plain, next);
        }
        // A released tensor of a plain scope stays released and says so.
        Assert.Throws<ObjectDisposedException>(() => plain.ToArray());
    }

    [Fact]
    public void Tensors_whose_memory_the_scope_did_not_lend_outlive_it_and_are_not_reused()
    {
        var data = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2);
        Tensor row;
        using (TensorScope.Begin(reuseTensorObjects: true)) row = data.Narrow(1, 1);
        using (TensorScope.Begin(reuseTensorObjects: true))
        {
            var other = Tensor.Zeros(2);
            Assert.NotSame(row, other);
        }
        Assert.Equal(new[] { 3f, 4f }, row.ToArray());
    }

    [Fact]
    public void Training_with_reused_tensor_objects_gives_bit_identical_weights()
    {
        static float[][] Train(bool reuse)
        {
            var g = new Generator(5);
            var net = new Sequential(
                new Conv2d(1, 8, 3, padding: 1, bias: false, generator: g), new BatchNorm2d(8), new ReLU(),
                new Conv2d(8, 8, 3, stride: 2, padding: 1, generator: g), new ReLU(), new MaxPool2d(2),
                new Flatten(), new Linear(8 * 4 * 4, 5, generator: g));
            var optimizer = new Sgd(net.Parameters(), 0.1, momentum: 0.9, weightDecay: 5e-4);
            var x = Tensor.Normal([6, 1, 16, 16], 0, 1, new Generator(6));
            var y = new[] { 0, 1, 2, 3, 4, 0 };
            for (int step = 0; step < 4; step++)
            {
                using var scope = TensorScope.Begin(reuseTensorObjects: reuse);
                optimizer.ZeroGrad(setToNone: false);
                Functional.CrossEntropy(net.Forward(x), y).Backward();
                optimizer.Step();
            }
            return net.Parameters().Select(p => p.ToArray()).ToArray();
        }

        var plain = Train(reuse: false);
        var reused = Train(reuse: true);
        Assert.Equal(plain.Length, reused.Length);
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i], reused[i]);
    }

    [Fact]
    public void A_backward_pass_through_a_released_intermediate_throws_and_leaves_no_gradient()
    {
        var x = Tensor.FromArray([1f, -2f, 3f]);
        x.RequiresGrad = true;
        Tensor y;
        using (TensorScope.Begin(reuseTensorObjects: true))
        {
            var h = Functional.MulScalar(x, 2);                                    // lent by this scope
            using (TensorScope.Suspend()) y = Functional.Relu(h);                  // outlives it
        }
        var e = Assert.Throws<ObjectDisposedException>(() => y.Backward(Tensor.Ones(3)));
        Assert.Contains("TensorScope", e.Message);
        Assert.Null(x.Grad);
    }

    [Fact]
    public void Backward_on_a_released_result_throws_object_disposed()
    {
        var x = Tensor.FromArray([1f, 2f]);
        x.RequiresGrad = true;
        Tensor loss;
        using (TensorScope.Begin()) loss = Functional.Sum(Functional.MulScalar(x, 3));
        Assert.Throws<ObjectDisposedException>(() => loss.Backward());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void The_next_step_reuses_the_autograd_nodes_of_the_last_one()
    {
        var w = Tensor.FromArray([0.5f, -1f, 2f, 1f], 2, 2);
        w.RequiresGrad = true;
        var x = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2);
        object? firstNode;
        using (TensorScope.Begin())
        {
            var y = Functional.Linear(x, w);
            firstNode = y.GradFn;
            Functional.Sum(y).Backward();
        }
        Assert.NotNull(firstNode);
        using (TensorScope.Begin())
        {
            var y = Functional.Linear(x, w);
            Assert.Same(firstNode, y.GradFn);
            Functional.Sum(y).Backward();
        }
        // dW = Gᵀ·X with G all ones, accumulated over the two passes.
        Assert.Equal(new[] { 8f, 12f, 8f, 12f }, w.Grad!.ToArray());
    }

    [Fact]
    public void Tensors_of_one_shape_share_one_shape_array_that_nobody_can_change()
    {
        var a = Tensor.Zeros(2, 3);
        var b = Tensor.Ones(2, 3);
        Assert.Same(a.ShapeRef, b.ShapeRef);
        var copy = a.ShapeArray();
        copy[0] = 7;
        Assert.Equal(new[] { 2, 3 }, b.ShapeArray());
        var shape = new[] { 2, 3 };
        var c = Tensor.Zeros(shape);
        shape[1] = 9;                                                              // the caller's array is not held
        Assert.Equal(new[] { 2, 3 }, c.ShapeArray());
        Assert.Equal(new[] { 3, 2 }, a.Reshape(3, 2).ShapeArray());
        Assert.Equal(new[] { 6 }, a.Reshape(-1).ShapeArray());
    }
}
