using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Tuning;

namespace MLNet.FastTrain.Learning;

/// <summary>The training recipes.</summary>
public enum RecipeKind
{
    /// <summary>
    /// fastai's fine-tuning recipe. For a network that is not pretrained, the frozen stages (precomputed activations,
    /// head training) have nothing to train and are skipped: find the learning rate, then, with augmentation, SGDR with
    /// cycle length 1 and cycle multiplier 2 until the validation loss stops improving (the best epoch's weights are
    /// kept). For a pretrained body use <see cref="FineTuning.FineTuneRecipe"/>.
    /// </summary>
    FineTune,

    /// <summary>SGD with warm restarts for a number of cycles.</summary>
    Sgdr,

    /// <summary>One cycle over a number of epochs.</summary>
    OneCycle,
}

/// <summary>Settings of <see cref="Recipes.Run"/>; defaults follow fastai.</summary>
public sealed class RecipeOptions
{
    /// <summary>Which recipe. Default: fine-tune.</summary>
    public RecipeKind Recipe { get; set; } = RecipeKind.FineTune;

    /// <summary>The most epochs any recipe may train (null: the recipe's own length).</summary>
    public int? MaxEpochs { get; set; }

    /// <summary>Epochs of one-cycle. Default 3.</summary>
    public int Epochs { get; set; } = 3;

    /// <summary>SGDR cycles. Default 3 (1 + 2 + 4 epochs with the default length and multiplier).</summary>
    public int Cycles { get; set; } = 3;

    /// <summary>Epochs in the first SGDR cycle. Default 1.</summary>
    public int CycleLength { get; set; } = 1;

    /// <summary>Growth of each SGDR cycle. Default 2.</summary>
    public int CycleMult { get; set; } = 2;

    /// <summary>The peak learning rate; null runs the LR finder and takes its suggestion.</summary>
    public double? LearningRate { get; set; }

    /// <summary>The LR finder's rule when <see cref="LearningRate"/> is null. Default <see cref="LrSuggestion.Auto"/>.</summary>
    public LrSuggestion Suggestion { get; set; } = LrSuggestion.Auto;

    /// <summary>
    /// SGDR cycles whose end brings no validation improvement before fine-tuning stops (the best cycle's weights are
    /// then restored). Default 0: the first cycle that ends no better stops it.
    /// </summary>
    public int Patience { get; set; }

    /// <summary>
    /// The fine-tune recipe's augmentation (its first step), applied to image training data; null turns it off.
    /// Default Augmentations.BySize (fastai's preset above 32 px, flip and shift below). The other recipes train on the images as they are.
    /// </summary>
    public Vision.Transforms.BatchTransform? Augmentation { get; set; } = Vision.Transforms.Augmentations.BySize();

    /// <summary>Wall-clock budget for the whole recipe (LR finder included); training stops cleanly when it is spent. Default none.</summary>
    public TimeSpan? TimeBudget { get; set; }

    /// <summary>
    /// Where the training stage writes a checkpoint after every epoch and, when cancelled, after the batch that was
    /// running. Default none.
    /// </summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>
    /// A checkpoint of an interrupted run of the same recipe, options and seed: the training stage continues from it.
    /// With --lr auto the LR finder runs again first, on the fresh network, and suggests the same rate. Default none.
    /// </summary>
    public Checkpoint? Resume { get; set; }
}

/// <summary>What a recipe did.</summary>
public sealed record RecipeResult(double LearningRate, LrFinderResult? LrFinder, int Epochs, ValidationResult? Validation, double Seconds, string? StopReason);

/// <summary>The recipes as short compositions of the learner's building blocks.</summary>
public static class Recipes
{
    /// <summary>Runs a recipe on a learner.</summary>
    public static RecipeResult Run(Learner learner, RecipeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(learner);
        ArgumentNullException.ThrowIfNull(options);
        var clock = Stopwatch.StartNew();
        var limits = new List<Callback>();
        if (options.TimeBudget is TimeSpan t) limits.Add(new TimeBudget(t));
        var checkpoints = options.CheckpointDirectory is { } dir ? new CheckpointCallback(dir) : null;
        if (checkpoints is not null) limits.Add(checkpoints);
        limits.Add(new CancelOnRequest(cancellationToken, checkpoints));
        LrFinderResult? finder = null;
        double lr;
        if (options.LearningRate is double given)
        {
            lr = given;
        }
        else
        {
            (lr, finder) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = options.Suggestion, RestartsAtPeak = options.Recipe != RecipeKind.OneCycle }, cancellationToken);
            learner.Write(string.Create(CultureInfo.InvariantCulture, $"LR finder suggests {lr:G3} ({options.Suggestion.ToString().ToLowerInvariant()} rule)."));
        }

        int epochsBefore = learner.EpochsTrained;
        switch (options.Recipe)
        {
            case RecipeKind.OneCycle:
                learner.FitOneCycle(Math.Min(options.Epochs, options.MaxEpochs ?? int.MaxValue), [lr], extra: limits, resume: options.Resume, cancellationToken: cancellationToken);
                break;
            case RecipeKind.Sgdr:
                learner.FitSgdr(CyclesWithin(options), [lr], options.CycleLength, options.CycleMult, extra: limits, cancellationToken: cancellationToken, resume: options.Resume);
                break;
            default:
                learner.Write("Fine-tune: the network is not pretrained, so the frozen stages (precomputed activations, head training) are skipped.");
                if (learner.TrainData is Vision.Datasets.DataLoader images) images.BatchTransform = options.Augmentation;
                learner.FitSgdr(CyclesWithin(options), [lr], options.CycleLength, options.CycleMult,
                    extra: learner.ValidData is null ? limits : [new EarlyStopping("valid_loss", options.Patience, atCycleEnds: true), .. limits], cancellationToken: cancellationToken, resume: options.Resume);
                break;
        }
        learner.ThrowIfStopRequested(cancellationToken);
        var validation = learner.ValidData is null ? null : learner.Validate(cancellationToken: learner.OnThisRankAlone(cancellationToken));
        return new RecipeResult(lr, finder, learner.EpochsTrained - epochsBefore, validation, clock.Elapsed.TotalSeconds, learner.StopReason);
    }

    /// <summary>The most SGDR cycles whose epochs fit within MaxEpochs (at least one).</summary>
    private static int CyclesWithin(RecipeOptions o)
    {
        int cycles = 0;
        long epochs = 0, length = o.CycleLength;
        while (cycles < o.Cycles && epochs + length <= (o.MaxEpochs ?? long.MaxValue))
        {
            epochs += length;
            length *= o.CycleMult;
            cycles++;
        }
        return Math.Max(1, cycles);
    }
}
