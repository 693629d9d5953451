namespace MLNet.FastTrain.Engine.Schedules;

/// <summary>
/// SGD with warm restarts (Loshchilov and Hutter, 2017): within each cycle the learning rate falls from its peak to
/// <see cref="MinLr"/> along a half cosine, one step per mini-batch, then jumps back. Cycle i lasts
/// CycleLength · CycleMult^i epochs.
/// </summary>
/// <remarks>
/// With no warm-up and no decay, step t gives exactly PyTorch's CosineAnnealingWarmRestarts stepped every batch
/// with T_0 = CycleLength × batches per epoch and T_mult = CycleMult:
/// η_t = η_min + (η_max − η_min)·(1 + cos(π·T_cur/T_i))/2.
/// </remarks>
public sealed class SgdrSchedule : Schedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="maxLr">The peak of the first cycle.</param>
    /// <param name="cycles">How many cycles.</param>
    /// <param name="stepsPerEpoch">Mini-batches per epoch.</param>
    /// <param name="cycleLength">Epochs in the first cycle (fastai's cycle_len).</param>
    /// <param name="cycleMult">Each cycle is this many times longer than the one before (fastai's cycle_mult).</param>
    /// <param name="minLr">The floor each cycle anneals to.</param>
    /// <param name="warmupSteps">Steps of linear warm-up from MinLr at the start of training.</param>
    /// <param name="peakDecay">Each cycle's peak is this fraction of the previous one's (1 keeps it).</param>
    public SgdrSchedule(double maxLr, int cycles, int stepsPerEpoch, int cycleLength = 1, int cycleMult = 1,
        double minLr = 0, int warmupSteps = 0, double peakDecay = 1)
        : base(TotalSteps(cycles, stepsPerEpoch, cycleLength, cycleMult))
    {
        if (!(maxLr > 0)) throw new ArgumentOutOfRangeException(nameof(maxLr), $"maxLr must be positive, not {maxLr}.");
        if (minLr < 0 || minLr > maxLr) throw new ArgumentOutOfRangeException(nameof(minLr), $"minLr must be in [0, maxLr], not {minLr}.");
        if (peakDecay <= 0 || peakDecay > 1) throw new ArgumentOutOfRangeException(nameof(peakDecay), $"peakDecay must be in (0, 1], not {peakDecay}.");
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        MaxLr = maxLr;
        MinLr = minLr;
        Cycles = cycles;
        StepsPerEpoch = stepsPerEpoch;
        CycleLength = cycleLength;
        CycleMult = cycleMult;
        WarmupSteps = warmupSteps;
        PeakDecay = peakDecay;
    }

    /// <summary>The first cycle's peak.</summary>
    public double MaxLr { get; }

    /// <summary>The floor.</summary>
    public double MinLr { get; }

    /// <summary>Number of cycles.</summary>
    public int Cycles { get; }

    /// <summary>Mini-batches per epoch.</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Epochs in the first cycle.</summary>
    public int CycleLength { get; }

    /// <summary>Growth of each cycle's length.</summary>
    public int CycleMult { get; }

    /// <summary>Linear warm-up steps at the start.</summary>
    public int WarmupSteps { get; }

    /// <summary>Peak decay per cycle.</summary>
    public double PeakDecay { get; }

    /// <summary>Total epochs: CycleLength · (1 + CycleMult + … + CycleMult^(cycles−1)).</summary>
    public int Epochs => Steps / StepsPerEpoch;

    /// <summary>The step at which each cycle ends (exclusive), for snapshot ensembles.</summary>
    public IReadOnlyList<int> CycleEnds()
    {
        var ends = new List<int>();
        long length = (long)CycleLength * StepsPerEpoch, end = 0;
        for (int i = 0; i < Cycles; i++, length *= CycleMult) ends.Add((int)(end += length));
        return ends;
    }

    /// <inheritdoc />
    protected override double Evaluate(int step)
    {
        long length = (long)CycleLength * StepsPerEpoch;
        long tCur = step;
        int cycle = 0;
        while (tCur >= length) { tCur -= length; length *= CycleMult; cycle++; }
        double peak = MaxLr * Math.Pow(PeakDecay, cycle);
        double lr = MinLr + (peak - MinLr) * (1 + Math.Cos(Math.PI * tCur / length)) / 2;
        if (step < WarmupSteps) lr = Math.Min(lr, Linear(MinLr, MaxLr, (step + 1.0) / WarmupSteps));
        return lr;
    }

    private static int TotalSteps(int cycles, int stepsPerEpoch, int cycleLength, int cycleMult)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cycles);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(stepsPerEpoch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cycleLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cycleMult);
        long total = 0, length = (long)cycleLength * stepsPerEpoch;
        for (int i = 0; i < cycles; i++, length *= cycleMult) total += length;
        if (total > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(cycles), $"{cycles} cycles of length {cycleLength}×{cycleMult}^i make {total} steps, too many.");
        return (int)total;
    }
}
