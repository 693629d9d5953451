using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Engine.Optimizers;

/// <summary>
/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay, with torch's
/// update rule:
/// <code>
/// d = g + wd·p
/// b = d                          on the first step
/// b = μ·b + (1 − dampening)·d    afterwards
/// d = d + μ·b  (Nesterov)   or   d = b
/// p = p − lr·d
/// </code>
/// </summary>
public sealed class Sgd : Optimizer
{
    /// <summary>Creates SGD over one group of parameters.</summary>
    public Sgd(IEnumerable<Parameter> parameters, double learningRate, double momentum = 0, double weightDecay = 0, bool nesterov = false, double dampening = 0)
        : this(OneGroup(parameters), learningRate, momentum, weightDecay, nesterov, dampening)
    {
    }

    /// <summary>Creates SGD over parameter groups; each group's unset values take these defaults.</summary>
    public Sgd(IEnumerable<ParamGroup> groups, double learningRate, double momentum = 0, double weightDecay = 0, bool nesterov = false, double dampening = 0)
        : base(groups, new ParamGroup([]) { LearningRate = learningRate, Momentum = momentum, WeightDecay = weightDecay, Nesterov = nesterov, Dampening = dampening })
    {
    }

    /// <inheritdoc />
    protected override void Validate(ParamGroup group)
    {
        base.Validate(group);
        if (group.Momentum is < 0) throw new ArgumentOutOfRangeException(nameof(group), $"Invalid momentum {group.Momentum}.");
        if (group.Nesterov == true && (group.Momentum is not > 0 || group.Dampening is not 0))
            throw new ArgumentException("Nesterov momentum needs a positive momentum and zero dampening.", nameof(group));
    }

    /// <inheritdoc />
    protected override void Update(ParamGroup group, Parameter parameter, Tensor gradient, Dictionary<string, Tensor> state)
    {
        if (parameter.DType == DType.Float32) Apply<float>(group, parameter, gradient, state);
        else Apply<double>(group, parameter, gradient, state);
    }

    private static void Apply<T>(ParamGroup group, Parameter parameter, Tensor gradient, Dictionary<string, Tensor> state)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // The same arithmetic as the rule above, arranged to work in place without temporaries.
        var p = parameter.Span<T>();
        var g = gradient.Span<T>();
        T lr = T.CreateTruncating(group.Lr);
        T wd = T.CreateTruncating(group.WeightDecay ?? 0);
        T mu = T.CreateTruncating(group.Momentum ?? 0);
        T damp = T.CreateTruncating(1 - (group.Dampening ?? 0));

        if (mu == T.Zero)
        {
            // p = p − lr·(g + wd·p)
            if (wd != T.Zero) TensorPrimitives.Multiply(p, T.One - lr * wd, p);
            TensorPrimitives.MultiplyAdd(g, -lr, p, p);
            return;
        }

        Span<T> b;
        if (!state.TryGetValue("momentum_buffer", out var buffer))
        {
            state["momentum_buffer"] = buffer = Tensor.ZerosLike(parameter);
            b = buffer.Span<T>();
            g.CopyTo(b);                                                   // b = d = g + wd·p
            if (wd != T.Zero) TensorPrimitives.MultiplyAdd(p, wd, b, b);
        }
        else
        {
            b = buffer.Span<T>();
            TensorPrimitives.Multiply(b, mu, b);                          // b = μ·b + (1 − dampening)·(g + wd·p)
            TensorPrimitives.MultiplyAdd(g, damp, b, b);
            if (wd != T.Zero) TensorPrimitives.MultiplyAdd(p, damp * wd, b, b);
        }

        if (group.Nesterov == true)
        {
            // p = p − lr·(g + wd·p + μ·b)
            if (wd != T.Zero) TensorPrimitives.Multiply(p, T.One - lr * wd, p);
            TensorPrimitives.MultiplyAdd(g, -lr, p, p);
            TensorPrimitives.MultiplyAdd(b, -lr * mu, p, p);
        }
        else
        {
            TensorPrimitives.MultiplyAdd(b, -lr, p, p);                   // p = p − lr·b
        }
    }
}
