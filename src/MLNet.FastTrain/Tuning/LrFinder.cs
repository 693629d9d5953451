using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Distributed;
using MLNet.FastTrain.Engine.Schedules;
using MLNet.FastTrain.Learning;

namespace MLNet.FastTrain.Tuning;

/// <summary>
/// Leslie Smith's learning-rate range test (Smith, 2017): train for a short while with the learning rate growing
/// from tiny to huge, record the loss, and read a good learning rate off the curve. The model, its buffers, the
/// optimizer state and hyperparameters and the random state are restored exactly afterwards.
/// </summary>
public sealed class LrFinder
{
    /// <summary>The range test's settings; the defaults are fastai's.</summary>
    public sealed class Options
    {
        /// <summary>The first learning rate. Default 1e-7.</summary>
        public double StartLr { get; set; } = 1e-7;

        /// <summary>The last learning rate. Default 10.</summary>
        public double EndLr { get; set; } = 10;

        /// <summary>Training steps. Default 100.</summary>
        public int Iterations { get; set; } = 100;

        /// <summary>Exponential ramp (default) or linear.</summary>
        public bool Exponential { get; set; } = true;

        /// <summary>Weight of the past in the loss's moving average. Default 0.98.</summary>
        public double Beta { get; set; } = 0.98;

        /// <summary>Stop once the smoothed loss exceeds this multiple of its best. Default 4.</summary>
        public double DivergenceFactor { get; set; } = 4;

        /// <summary>
        /// Per-group (start, end) learning rates instead of one range for all groups, for discriminative rates.
        /// </summary>
        public IReadOnlyList<(double Start, double End)>? PerGroup { get; set; }

        /// <summary>
        /// When set, the curve is the validation accuracy on this many validation items after each step (Smith's
        /// original form) instead of the training loss. Slower; default off.
        /// </summary>
        public int? RankByValidationItems { get; set; }

        /// <summary>
        /// <see cref="LrSuggestion.Ranked"/>: the most training steps of each short run (one epoch of the training
        /// loader when it is shorter); <see cref="LrSuggestion.Auto"/> ranks when an epoch fits in them. Default 300.
        /// </summary>
        public int RankingSteps { get; set; } = 300;

        /// <summary>
        /// The rate <see cref="Suggest"/> returns when the curve shows no descent training could use: the valley and
        /// the combined rate both lie in the ramp's first decade (below ten times its start), where nothing trains.
        /// That is the curve of a network already fitted to its data (a pretrained body after its head has learnt the
        /// training images: its loss starts near zero, and noise stops the test at once). With <see cref="PerGroup"/>
        /// it is the first group's rate, as the curve's are. Default null: 1e-3.
        /// </summary>
        public double? NoDescentRate { get; set; }

        /// <summary>
        /// The training that follows starts at its peak rate without a warm-up, as every SGDR cycle does; then
        /// <see cref="LrSuggestion.Auto"/>, where it reads the curve, takes the geometric middle of the valley and the
        /// combined rate (SGDR's best rate was at or below one-cycle's in every cell of the grid table, up to 5.6×
        /// lower). Default false: a warm-up follows (one-cycle), or nothing is known.
        /// </summary>
        public bool RestartsAtPeak { get; set; }

        /// <summary><see cref="LrSuggestion.Ranked"/>: the validation items (the first ones) each short run is scored on. Default 1,000.</summary>
        public int RankingItems { get; set; } = 1000;

        /// <summary>
        /// The rule <see cref="Suggest"/> takes. Default <see cref="LrSuggestion.Auto"/>: short runs ranked by accuracy
        /// when an epoch is short, otherwise <see cref="LrSuggestion.Combined"/> (fastai's valley, kept from landing far
        /// left of the minimum on long, smoothly falling curves).
        /// </summary>
        public LrSuggestion Suggestion { get; set; } = LrSuggestion.Auto;
    }

    /// <summary>
    /// Runs the test and returns the suggestion of <see cref="Options.Suggestion"/>'s rule for training, writing any
    /// warning to the learner's log; when the curve gives no suggestion, 1e-3 (a safe default for Adam-family
    /// optimizers).
    /// </summary>
    public static (double LearningRate, LrFinderResult Result) Suggest(Learner learner, Options? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(learner);
        options ??= new Options();
        var result = Run(learner, options, cancellationToken);
        if (result.Warning is not null) learner.Write("LR finder: " + result.Warning);
        if (NoUsableDescent(result, options))
        {
            double fallback = options.NoDescentRate ?? 1e-3;
            learner.Write(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"LR finder: the curve shows no descent to train on (its valley lies below ten times the ramp's start: a network already fitted to its data?); {fallback:G3} is used instead."));
            return (fallback, result);
        }
        bool rank = options.Suggestion == LrSuggestion.Ranked
            || (options.Suggestion == LrSuggestion.Auto && learner.TrainData.BatchCount <= options.RankingSteps && learner.ValidData is Vision.Datasets.DataLoader);
        if (rank && result.Suggestions.Count > 0)
        {
            if (learner.ValidData is not Vision.Datasets.DataLoader)
                learner.Write("LR finder: the ranked rule needs validation images; the combined rule's suggestion is used.");
            else
                return (OnRankZero(learner, () => Rank(learner, result, options, cancellationToken)), result);
        }
        if (options.Suggestion == LrSuggestion.Auto && options.RestartsAtPeak
            && result.Suggestions.TryGetValue(LrSuggestion.Valley, out double low) && result.Suggestions.TryGetValue(LrSuggestion.Combined, out double high)
            && double.IsFinite(low) && double.IsFinite(high))
            return (Math.Sqrt(low * high), result);
        var rule = options.Suggestion is LrSuggestion.Ranked or LrSuggestion.Auto ? LrSuggestion.Combined : options.Suggestion;
        return (result.Suggestions.TryGetValue(rule, out double lr) && double.IsFinite(lr) ? lr : 1e-3, result);
    }

    /// <summary>
    /// Whether a curve has nothing to read: fastai's valley and the combined rule both land below ten times the
    /// ramp's start (the test stopped almost at once, or the loss only wandered at rates too small to train).
    /// </summary>
    internal static bool NoUsableDescent(LrFinderResult result, Options options)
    {
        double floor = 10 * (options.PerGroup is { Count: > 0 } groups ? groups[0].Start : options.StartLr);
        return result.Suggestions.TryGetValue(LrSuggestion.Valley, out double valley) && valley < floor
            && result.Suggestions.TryGetValue(LrSuggestion.Combined, out double combined) && combined < floor;
    }

    /// <summary>
    /// Smith's check of a reading by training (Smith, 2017, ranks rates by validation accuracy): the candidates run
    /// from the valley to the combined rule's rate (the valley, their geometric middle, the combined rate); each
    /// trains a short one-cycle from the same start and is scored on a fixed validation subset. The lowest rate whose
    /// accuracy is within one standard error of the best wins (the one-standard-error rule: on 1,000 items an
    /// accuracy near 80 % is only known to ±1.3 points, and of rates that score alike the lower one is the safer for
    /// a longer run and for SGDR's restarts, which begin at the peak). The learner is put back exactly afterwards.
    /// </summary>
    private static double Rank(Learner learner, LrFinderResult result, Options options, CancellationToken cancellationToken)
    {
        double valley = result.Suggestions[LrSuggestion.Valley], combined = result.Suggestions[LrSuggestion.Combined];
        double[] candidates = combined / valley < 1.5 ? [combined] : [valley, Math.Sqrt(valley * combined), combined];
        if (candidates.Length == 1) return combined;
        int steps = Math.Min(learner.TrainData.BatchCount, options.RankingSteps);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 2, nameof(options.RankingSteps));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RankingItems, 1, nameof(options.RankingItems));
        var scoring = FirstItems((Vision.Datasets.DataLoader)learner.ValidData!, options.RankingItems);
        // Each group trains at the candidate times its share of the range test's ramp (discriminative rates keep their ratios).
        var ratios = Enumerable.Range(0, learner.Optimizer.Groups.Count).Select(g => options.PerGroup is { } pg ? pg[g].Start / pg[0].Start : 1).ToArray();
        var scored = new List<(double Lr, double Score, double StandardError)>();
        OffTheRecord(learner, before =>
        {
            foreach (double lr in candidates)
            {
                learner.Restore(before);
                var schedules = ratios.Select(r => new Engine.Schedules.OneCycleSchedule(lr * r, steps)).ToArray();
                int epochs = (steps + learner.TrainData.BatchCount - 1) / learner.TrainData.BatchCount;
                learner.Fit(epochs, [new ParamScheduler(schedules, schedules[0].Momentum), new StopAfterSteps(steps)], cancellationToken: cancellationToken);
                var v = learner.Validate(scoring, cancellationToken);
                // Accuracy decides, with its binomial standard error; the loss (lower is better) where there is no accuracy metric.
                scored.Add(v.Metrics.TryGetValue("accuracy", out double accuracy)
                    ? (lr, accuracy, Math.Sqrt(accuracy * (1 - accuracy) / v.Items))
                    : (lr, -v.Loss, 0));
            }
        });
        var top = scored.MaxBy(c => c.Score);
        double best = scored.Where(c => c.Score >= top.Score - top.StandardError).Min(c => c.Lr);
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        learner.Write(string.Create(inv,
            $"LR finder: ranked {candidates.Length} rates by {steps} steps each, scored on {scoring.Dataset.Count} validation items ({string.Join(", ", scored.Select(c => string.Create(inv, $"{c.Lr:G3}: {c.Score:G4}")))}); {best:G3} wins (the lowest within {top.StandardError:G2} of the best)."));
        return best;
    }

    // Runs `work` on rank 0 alone (no gradient averaging, no rate scaling for the rank count) and gives every rank
    // its answer; in one process it just runs it.
    private static double OnRankZero(Learner learner, Func<double> work) =>
        BitConverter.ToDouble(OnRankZero(learner, () => BitConverter.GetBytes(work())));

    // The same for an answer in bytes (never fewer than eight). When rank 0's work stops (a cancelled token) or
    // fails, it sends no answer or a single byte, and the other ranks stop or fail with it instead of waiting.
    private static byte[] OnRankZero(Learner learner, Func<byte[]> work)
    {
        var collective = learner.Collective;
        if (collective.Size == 1) return work();
        byte[]? mine = null;
        Exception? failure = null;
        if (collective.Rank == 0)
        {
            try
            {
                WithoutDistribution(learner, () => mine = work());
            }
            catch (Exception e)
            {
                failure = e;
            }
        }
        var answer = collective.BroadcastArray(collective.Rank != 0 ? null : failure is null ? mine : failure is OperationCanceledException ? [] : [0]);
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return answer.Length switch
        {
            0 => throw new Distributed.StopRequestedException("cancelled on rank 0 during the LR finder", CancellationToken.None),
            1 => throw new InvalidOperationException("The LR finder failed on rank 0; rank 0's output says why."),
            _ => answer,
        };
    }

    private static void WithoutDistribution(Learner learner, Action work)
    {
        var distributed = learner.Callbacks.Where(c => c is DataParallel or LinearLrScaling).ToList();
        foreach (var c in distributed) learner.Remove(c);
        try
        {
            work();
        }
        finally
        {
            foreach (var c in distributed) learner.Add(c);
        }
    }

    /// <summary>Ends a fit after a number of steps.</summary>
    private sealed class StopAfterSteps(int steps) : Callback
    {
        public override void AfterBatch(Learner learner)
        {
            if (learner.Step + 1 >= steps) throw new CancelFitException($"LR finder: ranking run of {steps} steps done.");
        }
    }

    /// <summary>Runs the test with default options.</summary>
    public static LrFinderResult Run(Learner learner) => Run(learner, new Options());

    /// <summary>
    /// Runs the test. In data-parallel training (docs/design.md §11) it runs once, on rank 0 with its local batch
    /// and without the other ranks, and every rank gets its curve.
    /// </summary>
    public static LrFinderResult Run(Learner learner, Options options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(learner);
        ArgumentNullException.ThrowIfNull(options);
        if (learner.Collective.Size == 1) return RunHere(learner, options, cancellationToken);
        return LrFinderResult.FromBytes(OnRankZero(learner, () => RunHere(learner, options, cancellationToken).ToBytes()), options);
    }

    private static LrFinderResult RunHere(Learner learner, Options options, CancellationToken cancellationToken)
    {
        if (!(options.StartLr > 0) || !(options.EndLr > options.StartLr))
            throw new ArgumentOutOfRangeException(nameof(options), $"LR finder: need 0 < StartLr < EndLr, got {options.StartLr} and {options.EndLr}.");
        if (options.Iterations < 2) throw new ArgumentOutOfRangeException(nameof(options), $"LR finder: Iterations must be at least 2, not {options.Iterations}.");
        if (options.Beta is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(options), $"LR finder: Beta must be in [0, 1), not {options.Beta}.");
        int groups = learner.Optimizer.Groups.Count;
        if (options.PerGroup is { } pg && pg.Count != groups)
            throw new ArgumentException($"LR finder: {pg.Count} per-group ranges for {groups} parameter groups.", nameof(options));
        if (options.RankByValidationItems is not null && learner.ValidData is not Vision.Datasets.DataLoader)
            throw new ArgumentException("LR finder: ranking by validation accuracy needs validation images (a DataLoader).", nameof(options));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var recorder = new RangeTestCallback(options, groups, learner.ValidData as Vision.Datasets.DataLoader);
        int epochs = (options.Iterations + learner.TrainData.BatchCount - 1) / learner.TrainData.BatchCount;
        OffTheRecord(learner, _ => learner.Fit(epochs, [recorder], cancellationToken: cancellationToken));
        return new LrFinderResult(recorder.Points, recorder.StoppedEarly, options, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Runs <paramref name="work"/> (given the learner's state from before it) outside the training history: no
    /// per-epoch validation, nothing in the recorder, and the learner put back exactly afterwards.
    /// </summary>
    private static void OffTheRecord(Learner learner, Action<LearnerSnapshot> work)
    {
        var before = learner.Capture();
        var valid = learner.ValidData;
        learner.ValidData = null;
        learner.Remove(learner.Recorder);
        try
        {
            work(before);
        }
        finally
        {
            learner.ValidData = valid;
            learner.Add(learner.Recorder);
            learner.Restore(before);
        }
    }

    /// <summary>
    /// A fixed scoring set: the first <paramref name="items"/> of a validation loader, in order, served as that loader
    /// serves them (its image size and transform too).
    /// </summary>
    private static Vision.Datasets.DataLoader FirstItems(Vision.Datasets.DataLoader valid, int items) =>
        valid.Over(valid.Dataset.Subset(Enumerable.Range(0, Math.Min(items, valid.Dataset.Count)).ToArray()));

    /// <summary>Drives the ramp and records the curve.</summary>
    private sealed class RangeTestCallback(Options options, int groups, Vision.Datasets.DataLoader? valid) : Callback
    {
        private double _average;
        private double _best = double.PositiveInfinity;
        private Vision.Datasets.DataLoader? _rankingData;

        public List<LrPoint> Points { get; } = [];

        public bool StoppedEarly { get; private set; }

        public override int Order => -10;

        private double LrAt(int step, double start, double end)
        {
            double pos = (double)step / (options.Iterations - 1);
            return options.Exponential ? Schedule.Exponential(start, end, pos) : Schedule.Linear(start, end, pos);
        }

        public override void BeforeBatch(Learner learner)
        {
            for (int g = 0; g < groups; g++)
            {
                var (start, end) = options.PerGroup?[g] ?? (options.StartLr, options.EndLr);
                learner.Optimizer.Groups[g].LearningRate = LrAt(learner.Step, start, end);
            }
        }

        public override void AfterStep(Learner learner)
        {
            int i = Points.Count;
            double raw = learner.LastLoss;
            if (options.RankByValidationItems is int items)
            {
                _rankingData ??= FirstItems(valid!, items);
                raw = 1 - learner.Validate(_rankingData).Metrics.GetValueOrDefault("accuracy", double.NaN); // lower is better, as a loss
            }
            _average = options.Beta * _average + (1 - options.Beta) * raw;
            double smooth = _average / (1 - Math.Pow(options.Beta, i + 1));
            Points.Add(new LrPoint(learner.Optimizer.Groups[0].LearningRate ?? 0, raw, smooth));
            if (smooth < _best) _best = smooth;
            if (!double.IsFinite(smooth) || smooth > options.DivergenceFactor * _best)
            {
                StoppedEarly = true;
                throw new CancelFitException("LR finder: the loss diverged; stopping the range test.");
            }
            if (Points.Count >= options.Iterations) throw new CancelFitException("LR finder: range test complete.");
        }
    }
}

/// <summary>One point of the range test: the learning rate (of the first group), the raw and the smoothed loss.</summary>
public sealed record LrPoint(double LearningRate, double Loss, double SmoothLoss);
