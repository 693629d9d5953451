using System.Numerics;
using System.Numerics.Tensors;
using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Engine.Optimizers;

/// <summary>
/// Adam (Kingma and Ba, 2015) with torch's update rule, and AdamW's decoupled weight decay (Loshchilov and
/// Hutter, 2019) when <see cref="Decoupled"/> is true:
/// <code>
/// t = t + 1
/// g = g + wd·p                     (Adam)     or   p = p·(1 − lr·wd)   (AdamW)
/// m = β₁·m + (1 − β₁)·g
/// v = β₂·v + (1 − β₂)·g²
/// p = p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// </code>
/// </summary>
public class Adam : Optimizer
{
    /// <summary>Creates Adam over one group of parameters.</summary>
    public Adam(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
        : this(OneGroup(parameters), learningRate, beta1, beta2, eps, weightDecay, decoupled: false)
    {
    }

    /// <summary>Creates Adam over parameter groups.</summary>
    public Adam(IEnumerable<ParamGroup> groups, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
        : this(groups, learningRate, beta1, beta2, eps, weightDecay, decoupled: false)
    {
    }

    private protected Adam(IEnumerable<ParamGroup> groups, double learningRate, double beta1, double beta2, double eps, double weightDecay, bool decoupled)
        : base(groups, new ParamGroup([]) { LearningRate = learningRate, Momentum = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay })
    {
        Decoupled = decoupled;
    }

    /// <summary>True for AdamW: weight decay shrinks the weights directly instead of joining the gradient.</summary>
    public bool Decoupled { get; }

    /// <inheritdoc />
    protected override void Validate(ParamGroup group)
    {
        base.Validate(group);
        if (group.Momentum is not (>= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(group), $"Invalid beta1 {group.Momentum}: it must be in [0, 1).");
        if (group.Beta2 is not (>= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(group), $"Invalid beta2 {group.Beta2}: it must be in [0, 1).");
        if (group.Eps is not >= 0) throw new ArgumentOutOfRangeException(nameof(group), $"Invalid eps {group.Eps}.");
    }

    /// <inheritdoc />
    protected override void Update(ParamGroup group, Parameter parameter, Tensor gradient, Dictionary<string, Tensor> state)
    {
        if (!state.TryGetValue("step", out var step))
        {
            state["step"] = step = Tensor.Scalar(0, DType.Float64);
            state["exp_avg"] = Tensor.ZerosLike(parameter);
            state["exp_avg_sq"] = Tensor.ZerosLike(parameter);
        }
        double t = step.Item() + 1;
        step.Fill(t);
        if (parameter.DType == DType.Float32) Apply<float>(group, parameter, gradient, state, t);
        else Apply<double>(group, parameter, gradient, state, t);
    }

    private void Apply<T>(ParamGroup group, Parameter parameter, Tensor gradient, Dictionary<string, Tensor> state, double t)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double lr = group.Lr, b1 = group.Momentum!.Value, b2 = group.Beta2!.Value, wd = group.WeightDecay ?? 0;
        var p = parameter.Span<T>();
        var m = state["exp_avg"].Span<T>();
        var v = state["exp_avg_sq"].Span<T>();
        var g = gradient.Span<T>();
        if (wd != 0)
        {
            if (Decoupled)
            {
                TensorPrimitives.Multiply(p, T.CreateTruncating(1 - lr * wd), p);
            }
            else
            {
                var decayed = new T[g.Length];
                TensorPrimitives.MultiplyAdd(p, T.CreateTruncating(wd), g, decayed);
                g = decayed;
            }
        }
        double biasCorrection1 = 1 - Math.Pow(b1, t);
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(b2, t));
        T stepSize = T.CreateTruncating(lr / biasCorrection1);
        T eps = T.CreateTruncating(group.Eps!.Value);
        T c2 = T.CreateTruncating(biasCorrection2Sqrt);
        T beta1 = T.CreateTruncating(b1), oneMinusB1 = T.CreateTruncating(1 - b1);
        T beta2 = T.CreateTruncating(b2), oneMinusB2 = T.CreateTruncating(1 - b2);
        for (int i = 0; i < p.Length; i++)
        {
            T gi = g[i];
            m[i] = beta1 * m[i] + oneMinusB1 * gi;
            v[i] = beta2 * v[i] + oneMinusB2 * gi * gi;
            p[i] -= stepSize * m[i] / (T.Sqrt(v[i]) / c2 + eps);
        }
    }
}

/// <summary>Adam with decoupled weight decay (default 0.01, as torch).</summary>
public sealed class AdamW : Adam
{
    /// <summary>Creates AdamW over one group of parameters.</summary>
    public AdamW(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : base(OneGroup(parameters), learningRate, beta1, beta2, eps, weightDecay, decoupled: true)
    {
    }

    /// <summary>Creates AdamW over parameter groups.</summary>
    public AdamW(IEnumerable<ParamGroup> groups, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : base(groups, learningRate, beta1, beta2, eps, weightDecay, decoupled: true)
    {
    }
}
