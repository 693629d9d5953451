using System.Runtime.CompilerServices;

namespace MLNet.FastTrain.Engine.Autograd;

/// <summary>
/// Reverse-mode differentiation: walks the recorded graph from a root in reverse topological order, sums the
/// gradients that reach each tensor, and accumulates them into the <see cref="Tensor.Grad"/> of leaves.
/// </summary>
internal static class BackwardEngine
{
    /// <summary>The pass's collections, kept per thread so a training step's backward allocates none of them.</summary>
    private sealed class Workspace
    {
        public List<Tensor> Order { get; } = [];
        public HashSet<Tensor> Visited { get; } = new(ReferenceEqualityComparer.Instance);
        public Stack<(Tensor Node, int NextInput)> Stack { get; } = new();
        public Dictionary<Tensor, Tensor> Pending { get; } = new(ReferenceEqualityComparer.Instance);

        private Tensor?[] _grads = new Tensor?[4];

        /// <summary>Where a node writes its inputs' gradients: cleared, one slot per input.</summary>
        public Span<Tensor?> Grads(int slots)
        {
            if (_grads.Length < slots) _grads = new Tensor?[slots];
            var span = _grads.AsSpan(0, slots);
            span.Clear();
            return span;
        }

        public void Clear()
        {
            Order.Clear();
            Visited.Clear();
            Stack.Clear();
            Pending.Clear();
            Array.Clear(_grads);
        }
    }

    [ThreadStatic]
    private static Workspace? t_workspace;

    public static void Run(Tensor root, Tensor? gradient)
    {
        root.ThrowIfReleased();
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward() was called on a tensor that does not require grad: no input of its computation has RequiresGrad set.");
        if (gradient is null)
        {
            if (root.Length != 1)
                throw new InvalidOperationException($"Backward() without a gradient needs a one-element tensor; this one has shape {ShapeText.Format(root.Shape)}.");
            gradient = Tensor.EmptyLike(root).Fill(1.0);
        }
        else if (!gradient.Shape.SequenceEqual(root.Shape))
        {
            throw ShapeMismatchException.For("Backward", "the gradient's shape must equal the tensor's", gradient.Shape, root.Shape);
        }

        // Taken, not shared: a backward rule that itself runs Backward() gets a fresh workspace.
        var work = t_workspace ?? new Workspace();
        t_workspace = null;
        try
        {
            Propagate(root, gradient, work);
        }
        finally
        {
            work.Clear();                                                          // hold no tensors between passes
            t_workspace = work;
        }
    }

    private static void Propagate(Tensor root, Tensor gradient, Workspace work)
    {
        var order = TopologicalOrder(root, work);
        var pending = work.Pending;
        pending[root] = gradient.Detach();
        bool anomaly = GradRecorder.IsAnomalyDetectionEnabled;

        using var _ = GradRecorder.NoGrad();
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            if (!pending.Remove(t, out var g)) continue;
            if (t.GradFn is null)
            {
                Accumulate(t, g);
                continue;
            }

            var node = t.GradFn;
            var inputGrads = work.Grads(node.Inputs.Length);
            try
            {
                node.Backward(g, inputGrads);
            }
            catch (NonFiniteValueException e) when (!e.InBackward)
            {
                // An operation inside a backward rule made the value: report the rule, not its helper.
                throw new NonFiniteValueException(node.Name, t.Shape, e);
            }
            for (int k = 0; k < inputGrads.Length; k++)
            {
                var input = node.Inputs[k];
                var ig = inputGrads[k];
                if (ig is null || input is null || !input.RequiresGrad) continue;
                if (!ig.Shape.SequenceEqual(input.Shape))
                    throw ShapeMismatchException.For(node.Name + " backward", "gradient and input shapes differ", ig.Shape, input.Shape);
                if (ig.DType != input.DType) ig = ig.To(input.DType);
                if (anomaly) GradRecorder.CheckFinite(ig, node.Name, inBackward: true);
                pending[input] = pending.TryGetValue(input, out var existing) ? Functional.Add(existing, ig) : ig;
            }
        }
    }

    private static void Accumulate(Tensor leaf, Tensor g)
    {
        if (leaf.Grad is null)
        {
            // A gradient may alias another tensor's storage (reshape views); the leaf gets its own copy, which
            // outlives any TensorScope the backward pass runs in.
            using var _ = TensorScope.Suspend();
            var own = Tensor.ZerosLike(leaf);
            own.CopyFrom(g);
            leaf.Grad = own;
        }
        else
        {
            Functional.AddInPlace(leaf.Grad, g);
        }
    }

    private static List<Tensor> TopologicalOrder(Tensor root, Workspace work)
    {
        // Iterative post-order DFS: a tensor is emitted after all tensors it depends on.
        var (order, visited, stack) = (work.Order, work.Visited, work.Stack);
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            var inputs = node.GradFn is { } fn ? fn.Inputs : default;
            if (next < inputs.Length)
            {
                stack.Push((node, next + 1));
                var child = inputs[next];
                if (child is null || !visited.Add(child)) continue;
                // A tensor of an ended scope has lost its memory and its node: the graph is no longer whole.
                child.ThrowIfReleased();
                if (child.RequiresGrad) stack.Push((child, 0));
            }
            else
            {
                order.Add(node);
            }
        }
        return order;
    }

    private sealed class ReferenceEqualityComparer : IEqualityComparer<Tensor>
    {
        public static readonly ReferenceEqualityComparer Instance = new();

        public bool Equals(Tensor? x, Tensor? y) => ReferenceEquals(x, y);

        public int GetHashCode(Tensor obj) => RuntimeHelpers.GetHashCode(obj);
    }
}
