namespace MLNet.FastTrain.Engine.Schedules;

/// <summary>Flat at the peak for a fraction of training, then cosine annealing to (nearly) zero, as fastai's fit_flat_cos.</summary>
public sealed class FlatCosSchedule(double lr, int steps, double pctStart = 0.75, double divFinal = 1e5) : Schedule(steps)
{
    /// <inheritdoc />
    protected override double Evaluate(int step)
    {
        double pos = (double)step / Steps;
        return pos < pctStart ? lr : Cos(lr, lr / divFinal, (pos - pctStart) / (1 - pctStart));
    }
}

/// <summary>Multiplies the rate by <paramref name="gamma"/> every <paramref name="stepSize"/> steps (torch's StepLR).</summary>
public sealed class StepDecaySchedule(double lr, int steps, int stepSize, double gamma = 0.1) : Schedule(steps)
{
    /// <inheritdoc />
    protected override double Evaluate(int step) => lr * Math.Pow(gamma, step / Math.Max(1, stepSize));
}
