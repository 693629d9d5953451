namespace MLNet.FastTrain.Engine.Schedules;

/// <summary>
/// A value (a learning rate or a momentum) as a pure function of the training step. Nothing is stateful, so a
/// schedule can be printed before training, evaluated at any step when resuming, and combined.
/// </summary>
public abstract class Schedule
{
    /// <summary>Creates a schedule that lasts <paramref name="steps"/> steps.</summary>
    protected Schedule(int steps)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(steps);
        Steps = steps;
    }

    /// <summary>How many steps the schedule covers. Past the end it holds its last value.</summary>
    public int Steps { get; }

    /// <summary>The value before step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return Evaluate(Math.Min(step, Steps - 1));
    }

    /// <summary>The value at a step in [0, Steps).</summary>
    protected abstract double Evaluate(int step);

    /// <summary>Every value, one per step.</summary>
    public double[] ToArray()
    {
        var values = new double[Steps];
        for (int i = 0; i < Steps; i++) values[i] = Evaluate(i);
        return values;
    }

    /// <summary>Cosine interpolation from <paramref name="start"/> to <paramref name="end"/> as pos goes 0 → 1.</summary>
    public static double Cos(double start, double end, double pos) => start + (1 + Math.Cos(Math.PI * (1 - pos))) * (end - start) / 2;

    /// <summary>Linear interpolation from <paramref name="start"/> to <paramref name="end"/> as pos goes 0 → 1.</summary>
    public static double Linear(double start, double end, double pos) => start + pos * (end - start);

    /// <summary>Exponential interpolation from <paramref name="start"/> to <paramref name="end"/> as pos goes 0 → 1.</summary>
    public static double Exponential(double start, double end, double pos) => start * Math.Pow(end / start, pos);

    /// <summary>A constant.</summary>
    public static Schedule Constant(double value, int steps) => new FunctionSchedule(steps, _ => value);

    /// <summary>Runs the parts one after another.</summary>
    public static Schedule Concat(params Schedule[] parts) => new ConcatSchedule(parts);

    /// <summary>A schedule from a function of the step.</summary>
    public static Schedule FromFunction(int steps, Func<int, double> f) => new FunctionSchedule(steps, f);

    private sealed class FunctionSchedule(int steps, Func<int, double> f) : Schedule(steps)
    {
        protected override double Evaluate(int step) => f(step);
    }

    private sealed class ConcatSchedule : Schedule
    {
        private readonly Schedule[] _parts;

        public ConcatSchedule(Schedule[] parts) : base(parts.Sum(p => p.Steps)) => _parts = parts;

        protected override double Evaluate(int step)
        {
            foreach (var p in _parts)
            {
                if (step < p.Steps) return p.At(step);
                step -= p.Steps;
            }
            return _parts[^1].At(_parts[^1].Steps - 1);
        }
    }
}
