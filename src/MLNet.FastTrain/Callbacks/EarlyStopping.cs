using System.Globalization;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// Stops training when a validation value has not improved by at least <see cref="MinDelta"/> for
/// <see cref="Patience"/> epochs — the model has started to overfit — and, by default, puts back the weights of
/// the best epoch. With <see cref="AtCycleEnds"/>, an SGDR fit is judged only where each cycle's learning rate has
/// annealed, since mid-cycle epochs at a raised rate are worse by design.
/// </summary>
public sealed class EarlyStopping : Callback
{
    private StateDict? _best;
    private int _bad;
    private int _lastEpoch = -1;

    /// <summary>Creates the callback.</summary>
    /// <param name="monitor">"valid_loss" (lower is better) or a metric name such as "accuracy" (higher is better).</param>
    /// <param name="patience">Epochs without improvement before stopping.</param>
    /// <param name="minDelta">The smallest change that counts as an improvement.</param>
    /// <param name="restoreBest">Reload the best epoch's weights when training ends.</param>
    /// <param name="atCycleEnds">
    /// In an SGDR fit, compare only after the last epoch of each cycle, and count <paramref name="patience"/> in
    /// cycles; other fits are judged every epoch.
    /// </param>
    public EarlyStopping(string monitor = "valid_loss", int patience = 1, double minDelta = 0, bool restoreBest = true, bool atCycleEnds = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(monitor);
        ArgumentOutOfRangeException.ThrowIfNegative(patience);
        ArgumentOutOfRangeException.ThrowIfNegative(minDelta);
        Monitor = monitor;
        Patience = patience;
        MinDelta = minDelta;
        RestoreBest = restoreBest;
        AtCycleEnds = atCycleEnds;
    }

    /// <summary>Whether an SGDR fit is judged at cycle ends only.</summary>
    public bool AtCycleEnds { get; }

    /// <summary>The monitored value.</summary>
    public string Monitor { get; }

    /// <summary>Epochs without improvement tolerated.</summary>
    public int Patience { get; }

    /// <summary>Minimum improvement.</summary>
    public double MinDelta { get; }

    /// <summary>Whether the best weights are restored at the end.</summary>
    public bool RestoreBest { get; }

    /// <summary>The best value seen.</summary>
    public double Best { get; private set; } = double.NaN;

    /// <summary>The epoch (of the fit, 0-based) that gave <see cref="Best"/>.</summary>
    public int BestEpoch { get; private set; } = -1;

    /// <inheritdoc />
    public override void BeforeFit(Learner learner)
    {
        _best = null;
        _bad = 0;
        _lastEpoch = -1;
        Best = double.NaN;
        BestEpoch = -1;
    }

    /// <inheritdoc />
    public override void AfterEpoch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        _lastEpoch = learner.Epoch;
        if (AtCycleEnds && learner.CycleEndEpochs is { } ends && !ends.Contains(learner.Epoch)) return;
        var v = learner.LastValidation ?? throw new InvalidOperationException("EarlyStopping needs validation data.");
        bool lowerIsBetter = Monitor == "valid_loss" || learner.Metrics.FirstOrDefault(m => m.Name == Monitor) is { HigherIsBetter: false };
        double value = Monitor == "valid_loss" ? v.Loss
            : v.Metrics.TryGetValue(Monitor, out var m) ? m
            : throw new InvalidOperationException($"EarlyStopping monitors '{Monitor}', which is neither valid_loss nor a metric ({string.Join(", ", v.Metrics.Keys)}).");
        bool improved = double.IsNaN(Best) || (lowerIsBetter ? value < Best - MinDelta : value > Best + MinDelta);
        if (improved)
        {
            Best = value;
            BestEpoch = learner.Epoch;
            _bad = 0;
            if (RestoreBest) _best = learner.Engine.ModelState();
            return;
        }
        if (++_bad > Patience)
            throw new CancelFitException(string.Create(CultureInfo.InvariantCulture,
                $"Stopped early: {Monitor} has not improved on {Best:G5} (epoch {BestEpoch + 1}) for {_bad} {(AtCycleEnds && learner.CycleEndEpochs is not null ? "cycles" : "epochs")}."));
    }

    /// <inheritdoc />
    public override void AfterFit(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (!RestoreBest || _best is null || BestEpoch == _lastEpoch) return;
        learner.Engine.LoadModelState(_best);
        learner.Write(string.Create(CultureInfo.InvariantCulture, $"Restored the weights of epoch {BestEpoch + 1} ({Monitor} {Best:G5})."));
    }
}
