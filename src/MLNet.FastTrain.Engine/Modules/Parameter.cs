namespace MLNet.FastTrain.Engine.Modules;

/// <summary>
/// A tensor that a <see cref="Module"/> owns and an optimizer updates. It requires grad unless frozen.
/// </summary>
public sealed class Parameter : Tensor
{
    /// <summary>Wraps the storage of <paramref name="data"/> as a parameter.</summary>
    public Parameter(Tensor data, bool requiresGrad = true)
        : base(data.Detach())
    {
        RequiresGrad = requiresGrad;
    }
}
