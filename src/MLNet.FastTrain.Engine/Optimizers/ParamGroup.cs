using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Engine.Optimizers;

/// <summary>
/// Parameters that share hyperparameters. Schedules and discriminative learning rates change these values
/// between steps; the optimizer reads them at every <see cref="Optimizer.Step"/>.
/// </summary>
public sealed class ParamGroup
{
    /// <summary>Creates a group; unset hyperparameters take the optimizer's defaults when the group is added.</summary>
    public ParamGroup(IEnumerable<Parameter> parameters, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToList();
        Name = name;
    }

    /// <summary>The parameters.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>An optional name shown in logs (for example "body" or "head").</summary>
    public string? Name { get; set; }

    /// <summary>The learning rate.</summary>
    public double? LearningRate { get; set; }

    /// <summary>SGD momentum, or Adam's β₁ (so one-cycle can cycle either).</summary>
    public double? Momentum { get; set; }

    /// <summary>Adam's β₂.</summary>
    public double? Beta2 { get; set; }

    /// <summary>Weight decay: L2 for SGD and Adam, decoupled for AdamW.</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Adam's ε.</summary>
    public double? Eps { get; set; }

    /// <summary>SGD dampening.</summary>
    public double? Dampening { get; set; }

    /// <summary>Nesterov momentum for SGD.</summary>
    public bool? Nesterov { get; set; }

    internal double Lr => LearningRate ?? 0;

    internal void FillDefaults(ParamGroup d)
    {
        LearningRate ??= d.LearningRate;
        Momentum ??= d.Momentum;
        Beta2 ??= d.Beta2;
        WeightDecay ??= d.WeightDecay;
        Eps ??= d.Eps;
        Dampening ??= d.Dampening;
        Nesterov ??= d.Nesterov;
    }
}
