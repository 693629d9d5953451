using System.Globalization;
using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;

namespace MLNet.FastTrain.FineTuning;

/// <summary>What each stage of the fine-tuning recipe did.</summary>
public sealed record FineTuneStage(string Name, double LearningRate, int Epochs, double? ValidLoss, double? Accuracy);

/// <summary>
/// fastai's classic recipe as one call: precompute and train the head; train the head with augmentation and cycle
/// length 1; unfreeze; give earlier groups rates 3× lower each; find the learning rate again; SGDR with cycle
/// multiplier 2 until the validation loss stops improving (the best weights are kept). Every stage can be switched
/// off or tuned in <see cref="Options"/>. For a network that is not pretrained the frozen stages are skipped, and
/// the log says so.
/// </summary>
public static class FineTuneRecipe
{
    /// <summary>The recipe's settings.</summary>
    public sealed class Options
    {
        /// <summary>Whether the body carries pretrained weights (if not, the frozen stages are skipped). Default true.</summary>
        public bool Pretrained { get; set; } = true;

        /// <summary>Epochs of head training on precomputed activations (0 skips the stage). Default 1.</summary>
        public int PrecomputedEpochs { get; set; } = 1;

        /// <summary>Cycles (of one epoch) of head training with augmentation through the frozen body (0 skips). Default 2.</summary>
        public int AugmentedHeadCycles { get; set; } = 2;

        /// <summary>The augmentation for every stage that trains on images; null turns augmentation off. Default <see cref="Augmentations.BySize"/> (fastai's preset above 32 px).</summary>
        public BatchTransform? Augmentation { get; set; } = Augmentations.BySize();

        /// <summary>How much lower each earlier group's rate is than the next (fastai's lr/9, lr/3, lr is 3). Default 3.</summary>
        public double GroupRateFactor { get; set; } = 3;

        /// <summary>SGDR cycles of the unfrozen stage, at most. Default 3 (1 + 2 + 4 epochs).</summary>
        public int Cycles { get; set; } = 3;

        /// <summary>Growth of each cycle in the unfrozen stage. Default 2.</summary>
        public int CycleMult { get; set; } = 2;

        /// <summary>
        /// SGDR cycles whose end brings no validation improvement before the unfrozen stage stops (the best cycle's weights are
        /// then restored). Default 0: the first cycle that ends no better stops it.
        /// </summary>
        public int Patience { get; set; }

        /// <summary>
        /// A folder for the precomputed activations, reused by later runs with the same body and data; null keeps them
        /// in memory only. Default null.
        /// </summary>
        public string? ActivationCacheDirectory { get; set; }

        /// <summary>The head's learning rate; null runs the LR finder. Default null.</summary>
        public double? HeadLearningRate { get; set; }

        /// <summary>The unfrozen stage's top (head) rate; null runs the LR finder again. Default null.</summary>
        public double? LearningRate { get; set; }

        /// <summary>The LR finder's rule wherever a rate is left to it. Default <see cref="LrSuggestion.Auto"/>.</summary>
        public LrSuggestion Suggestion { get; set; } = LrSuggestion.Auto;
    }

    /// <summary>
    /// Runs the recipe. The learner's optimizer must have been built from <paramref name="fineTune"/>'s
    /// <see cref="DifferentialFineTune.CreateParamGroups"/>, and its training data must be an image <see cref="DataLoader"/>.
    /// </summary>
    public static IReadOnlyList<FineTuneStage> Run(Learner learner, DifferentialFineTune fineTune, Options? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(learner);
        ArgumentNullException.ThrowIfNull(fineTune);
        options ??= new Options();
        if (learner.TrainData is not DataLoader images) throw new ArgumentException("The fine-tuning recipe needs image training data (a DataLoader).", nameof(learner));
        if (learner.Optimizer.Groups.Count != 2 * fineTune.Groups.Count)
            throw new ArgumentException("Build the learner's optimizer from DifferentialFineTune.CreateParamGroups().", nameof(learner));
        var stages = new List<FineTuneStage>();
        int groups = fineTune.Groups.Count;
        double headLrTrained = double.NaN;

        if (!options.Pretrained)
        {
            learner.Write("Fine-tune: the network is not pretrained, so the frozen stages (precomputed activations, head training) are skipped.");
        }
        else
        {
            fineTune.FreezeBatchNormStatistics = true;
            fineTune.Freeze(learner.Optimizer);
            double headLr = options.HeadLearningRate ?? double.NaN;
            if (options.PrecomputedEpochs > 0)
            {
                // The body runs on the learner's engine; the head, a few thousand weights on cached features, trains on
                // the managed engine, directly on the description's head modules, which then go back to the engine.
                var (body, head) = fineTune.SplitBodyHead();
                var cacheSource = new DataLoader(images.Dataset, images.BatchSize, images.Shuffle, images.Seed, images.DropLast, images.Normalization) { ImageSize = images.ImageSize };
                // Every rank computes the activations and trains the head by itself (no collective), so each stops
                // on its own token only where the ranks agree: before the next stage.
                var alone = learner.OnThisRankAlone(cancellationToken);
                var features = PrecomputedActivations.Compute(learner.Engine, body.Count, cacheSource, options.ActivationCacheDirectory, cancellationToken: alone);
                var validFeatures = learner.ValidData is DataLoader valid ? PrecomputedActivations.Compute(learner.Engine, body.Count, valid, cancellationToken: alone) : null;
                var headLearner = new Learner(head, features, validFeatures, new AdamW(head.Parameters()), learner.Metrics);
                headLearner.Log += (_, m) => learner.Write("head: " + m);
                if (double.IsNaN(headLr)) headLr = Suggest(headLearner, null, options.Suggestion, alone);
                headLearner.FitSgdr(options.PrecomputedEpochs, [headLr], cancellationToken: alone);
                learner.Engine.LoadDescription();
                learner.ThrowIfStopRequested(cancellationToken);
                stages.Add(Stage("precomputed head", headLr, options.PrecomputedEpochs, headLearner.LastValidation));
            }
            if (options.AugmentedHeadCycles > 0)
            {
                if (double.IsNaN(headLr)) headLr = Suggest(learner, null, options.Suggestion, cancellationToken);
                images.BatchTransform = options.Augmentation;
                // Frozen groups ignore their rate; they get the head's so every schedule is valid.
                learner.FitSgdr(options.AugmentedHeadCycles, fineTune.PerParamGroup(Enumerable.Repeat(headLr, groups).ToArray()), cycleLength: 1, cancellationToken: cancellationToken);
                stages.Add(Stage("augmented head", headLr, options.AugmentedHeadCycles, learner.LastValidation));
                learner.ThrowIfStopRequested(cancellationToken);
            }
            headLrTrained = headLr;
            fineTune.FreezeBatchNormStatistics = false;
            fineTune.Unfreeze(learner.Optimizer);
            learner.Write("Fine-tune: unfrozen.\n" + fineTune.Describe(learner.Optimizer));
        }

        images.BatchTransform = options.Augmentation;
        var ratios = Enumerable.Range(0, groups).Select(g => Math.Pow(options.GroupRateFactor, g - (groups - 1))).ToArray();
        // A body whose head has learnt the training images can leave the range test nothing to read (its loss starts
        // near zero); the whole net then takes fastai's fine_tune rates: half the head's rate at the top, spread 100×
        // down to the first group (its lr_mult), which keeps the pretrained early layers nearly where they are.
        double? noDescent = double.IsNaN(headLrTrained) ? null : headLrTrained / 2;
        bool fellBack = false;
        double lr = options.LearningRate ?? Suggest(learner, ratios, options.Suggestion, cancellationToken, out fellBack, noDescent);
        var rates = fellBack && noDescent is not null ? fineTune.Spread(lr / 100, lr) : ratios.Select(r => r * lr).ToArray();
        learner.Write(string.Create(CultureInfo.InvariantCulture, $"Fine-tune: SGDR at {string.Join(", ", rates.Select(r => r.ToString("G3", CultureInfo.InvariantCulture)))} per group, cycle multiplier {options.CycleMult}."));
        int before = learner.EpochsTrained;
        learner.FitSgdr(options.Cycles, fineTune.PerParamGroup(rates), cycleLength: 1, cycleMult: options.CycleMult,
            extra: learner.ValidData is null ? null : [new EarlyStopping("valid_loss", options.Patience, atCycleEnds: true)], cancellationToken: cancellationToken);
        learner.ThrowIfStopRequested(cancellationToken);
        var final = learner.ValidData is null ? null : learner.Validate(cancellationToken: learner.OnThisRankAlone(cancellationToken));
        stages.Add(Stage("unfrozen SGDR", lr, learner.EpochsTrained - before, final));
        return stages;
    }

    private static FineTuneStage Stage(string name, double lr, int epochs, ValidationResult? v) =>
        new(name, lr, epochs, v?.Loss, v?.Metrics.GetValueOrDefault("accuracy"));

    /// <summary>The LR finder's suggestion for the top group, ramping the other groups at their fixed ratios.</summary>
    private static double Suggest(Learner learner, double[]? ratios, LrSuggestion rule, CancellationToken cancellationToken) =>
        Suggest(learner, ratios, rule, cancellationToken, out _);

    private static double Suggest(Learner learner, double[]? ratios, LrSuggestion rule, CancellationToken cancellationToken, out bool fellBack, double? noDescent = null)
    {
        var options = new LrFinder.Options { Suggestion = rule, RestartsAtPeak = true }; // every stage trains SGDR
        if (ratios is not null)
            options.PerGroup = ratios.SelectMany(r => new[] { (options.StartLr * r, options.EndLr * r), (options.StartLr * r, options.EndLr * r) }).ToArray();
        if (noDescent is double top) options.NoDescentRate = ratios is null ? top : top * ratios[0];
        var (suggested, result) = LrFinder.Suggest(learner, options, cancellationToken);
        fellBack = LrFinder.NoUsableDescent(result, options);
        // With per-group ranges the recorded rate is the first group's; the head's is that over its ratio.
        return ratios is null ? suggested : suggested / ratios[0];
    }
}
