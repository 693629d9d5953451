namespace MLNet.FastTrain.Engine.Schedules;

/// <summary>
/// The one-cycle policy as fastai defines it (Smith, 2018): the learning rate rises along a cosine from
/// max/<see cref="Div"/> to max over the first <see cref="PctStart"/> of the steps, then falls along a cosine to
/// max/<see cref="DivFinal"/>; momentum moves the opposite way, 0.95 → 0.85 → 0.95 by default.
/// </summary>
public sealed class OneCycleSchedule : Schedule
{
    /// <summary>Creates the learning-rate schedule; <see cref="Momentum"/> gives the matching momentum schedule.</summary>
    public OneCycleSchedule(double maxLr, int steps, double pctStart = 0.25, double div = 25, double divFinal = 1e5,
        (double Start, double Middle, double End)? momentum = null)
        : base(steps)
    {
        if (!(maxLr > 0)) throw new ArgumentOutOfRangeException(nameof(maxLr), $"maxLr must be positive, not {maxLr}.");
        if (!(pctStart > 0 && pctStart < 1)) throw new ArgumentOutOfRangeException(nameof(pctStart), $"pctStart must be in (0, 1), not {pctStart}.");
        if (!(div > 0) || !(divFinal > 0)) throw new ArgumentOutOfRangeException(nameof(div), $"div ({div}) and divFinal ({divFinal}) must be positive.");
        MaxLr = maxLr;
        PctStart = pctStart;
        Div = div;
        DivFinal = divFinal;
        var (m0, m1, m2) = momentum ?? (0.95, 0.85, 0.95);
        Momentum = FromFunction(steps, step => Phase(step, m0, m1, m2));
    }

    /// <summary>The peak learning rate.</summary>
    public double MaxLr { get; }

    /// <summary>Fraction of the steps spent rising.</summary>
    public double PctStart { get; }

    /// <summary>The start is MaxLr / Div.</summary>
    public double Div { get; }

    /// <summary>The end is MaxLr / DivFinal.</summary>
    public double DivFinal { get; }

    /// <summary>The momentum (or Adam β₁) schedule that goes with it.</summary>
    public Schedule Momentum { get; }

    /// <inheritdoc />
    protected override double Evaluate(int step) => Phase(step, MaxLr / Div, MaxLr, MaxLr / DivFinal);

    private double Phase(int step, double start, double middle, double end)
    {
        // fastai's combined_cos evaluated at pos = step / steps.
        double pos = (double)step / Steps;
        return pos < PctStart ? Cos(start, middle, pos / PctStart) : Cos(middle, end, (pos - PctStart) / (1 - PctStart));
    }
}
