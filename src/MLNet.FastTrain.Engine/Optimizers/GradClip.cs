using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.Engine.Optimizers;

/// <summary>Gradient clipping, applied between <c>Backward()</c> and <c>Step()</c>.</summary>
public static class GradClip
{
    /// <summary>
    /// Scales all gradients together so that their joint norm is at most <paramref name="maxNorm"/>
    /// (coefficient maxNorm / (norm + 1e-6), as torch). Returns the norm before clipping.
    /// </summary>
    public static double ClipByNorm(IEnumerable<Parameter> parameters, double maxNorm, double normType = 2.0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"maxNorm must be positive, not {maxNorm}.");
        if (!(normType > 0)) throw new ArgumentOutOfRangeException(nameof(normType), $"normType must be positive, not {normType}.");
        var grads = parameters.Where(p => p.Grad is not null).Select(p => p.Grad!).ToList();
        double total = 0;
        foreach (var g in grads)
            for (int i = 0; i < g.Length; i++)
            {
                double a = Math.Abs(g.GetFlat(i));
                total = double.IsPositiveInfinity(normType) ? Math.Max(total, a) : total + Math.Pow(a, normType);
            }
        double norm = double.IsPositiveInfinity(normType) ? total : Math.Pow(total, 1.0 / normType);
        double coefficient = maxNorm / (norm + 1e-6);
        if (coefficient < 1)
            foreach (var g in grads)
                for (int i = 0; i < g.Length; i++) g.SetFlat(i, g.GetFlat(i) * coefficient);
        return norm;
    }

    /// <summary>Clamps every gradient element to [−clipValue, clipValue].</summary>
    public static void ClipByValue(IEnumerable<Parameter> parameters, double clipValue)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(clipValue > 0)) throw new ArgumentOutOfRangeException(nameof(clipValue), $"clipValue must be positive, not {clipValue}.");
        foreach (var p in parameters)
        {
            if (p.Grad is null) continue;
            for (int i = 0; i < p.Grad.Length; i++) p.Grad.SetFlat(i, Math.Clamp(p.Grad.GetFlat(i), -clipValue, clipValue));
        }
    }
}
