using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>
/// Memory handed from one scope to another (a loader's batch, built in a scope on its thread, given back by the
/// training step's scope): <see cref="TensorScope.Disown"/> and <see cref="TensorScope.Adopt"/>.
/// </summary>
public class HandOverTests
{
    // A length no other test asks for, so that the pool's bucket of that length is this test's alone.
    private const int Rows = 7, Columns = 1013;

    [Fact]
    public void A_disowned_tensor_outlives_its_scope_and_the_scope_that_adopts_it_gives_its_memory_to_the_next_tensor()
    {
        Tensor kept, view;
        using (var scope = TensorScope.Begin())
        {
            var t = Tensor.Full([Rows, Columns], 2.0);
            view = t.Narrow(1, 3);
            kept = scope.Disown(t);
            Assert.Same(t, kept);
        }
        Assert.True(view.IsReleased);                      // what was made along the way still goes back
        Assert.False(kept.IsReleased);
        Assert.All(kept.ToArray(), v => Assert.Equal(2f, v));

        var memory = kept.Storage;
        using (TensorScope.Begin()) TensorScope.Adopt(kept);
        Assert.True(kept.IsReleased);
        Assert.Throws<ObjectDisposedException>(() => kept.ToArray());
        using (TensorScope.Begin())
        {
            var next = Tensor.Zeros(Rows, Columns);
            Assert.Same(memory, next.Storage);
            Assert.All(next.ToArray(), v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void A_view_is_disowned_as_a_copy_and_cannot_be_adopted()
    {
        Tensor copy;
        using (var scope = TensorScope.Begin())
        {
            var t = Tensor.Full([Rows, Columns], 3.0);
            var view = t.Narrow(2, 2);
            copy = scope.Disown(view);
            Assert.NotSame(view, copy);
            Assert.NotSame(t.Storage, copy.Storage);
        }
        Assert.Equal([2, Columns], copy.ShapeArray());
        Assert.All(copy.ToArray(), v => Assert.Equal(3f, v));

        var whole = Tensor.Zeros(4, 5);
        var ex = Assert.Throws<ArgumentException>(() => TensorScope.Adopt(whole.Narrow(1, 2)));
        Assert.Equal("tensor", ex.ParamName);
    }

    [Fact]
    public void Without_a_scope_adopting_changes_nothing()
    {
        var t = Tensor.Full([3], 1.0);
        TensorScope.Adopt(t);
        Assert.False(t.IsReleased);
        Assert.Equal([1f, 1f, 1f], t.ToArray());
    }
}
