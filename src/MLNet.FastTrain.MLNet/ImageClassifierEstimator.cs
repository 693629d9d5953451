using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// What the image-classification trainers share: the schema contract, reading an <see cref="IDataView"/> into images
/// and labels, logging to <c>MLContext.Log</c>, and building the fitted model from ML.NET's own savable transformers.
/// A subclass says only how it trains.
/// </summary>
public abstract class ImageClassifierEstimator<TOptions> : IEstimator<TransformerChain<ITransformer>>
    where TOptions : ImageClassifierOptions
{
    private readonly IDataView? _validationSet;

    private protected ImageClassifierEstimator(IHostEnvironment context, TOptions options, IDataView? validationSet)
    {
        Environment = context ?? throw new ArgumentNullException(nameof(context));
        Settings = options ?? throw new ArgumentNullException(nameof(options));
        _validationSet = validationSet;
        foreach (var (name, value) in new[] { ("LabelColumnName", options.LabelColumnName), ("FeatureColumnName", options.FeatureColumnName),
                     ("ScoreColumnName", options.ScoreColumnName), ("PredictedLabelColumnName", options.PredictedLabelColumnName) })
        {
            if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"{name} must name a column.", nameof(options));
        }
        if (!(options.ValidationFraction is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(options), $"ValidationFraction must lie in [0, 1), not {options.ValidationFraction}.");
        if (options.LearningRate is double lr && !(lr > 0)) throw new ArgumentOutOfRangeException(nameof(options), $"LearningRate must be positive, not {lr}.");
        if (options.BatchSize is < 1) throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be positive, not {options.BatchSize}.");
        if (options.Backend?.Trim().ToLowerInvariant() is not ("auto" or "managed" or "torch"))
            throw new ArgumentException($"Unknown Backend '{options.Backend}'; expected auto, managed or torch.", nameof(options));
        if (!TrainedModel.Architectures.Contains(options.Architecture))
            throw new ArgumentException($"Unknown Architecture '{options.Architecture}'; expected {string.Join(", ", TrainedModel.Architectures)}.", nameof(options));
    }

    /// <summary>The user's environment: messages go to its log.</summary>
    private protected IHostEnvironment Environment { get; }

    /// <summary>Builds the ML.NET transformers of a fitted model (they keep no tie to the context that made them).</summary>
    private protected MLContext Builder { get; } = new();

    /// <summary>The options this trainer was made with.</summary>
    public TOptions Settings { get; }

    /// <summary>The learning rate the last <c>Fit</c> trained with (given, or found by the LR finder).</summary>
    public double? LearningRate { get; private protected set; }

    /// <summary>The LR finder's result of the last <c>Fit</c>, when it ran.</summary>
    public LrFinderResult? LrFinderResult { get; private protected set; }

    /// <summary>The learner of the last <c>Fit</c>, with its recorder (losses, rates, metrics per batch and epoch).</summary>
    public Learner? Learner { get; private protected set; }

    /// <summary>The rows the last <c>Fit</c> left out because their image could not be decoded (with <c>SkipInvalid</c>).</summary>
    public IReadOnlyList<string> SkippedRows { get; private set; } = [];

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var label = LabelInfo.Check(inputSchema, Settings.LabelColumnName);
        ImageInput.Classify(inputSchema, Settings.FeatureColumnName);
        // A schema shape records a key by its raw type only (no count), and a vector's kind but not its size.
        var key = new KeyDataViewType(label.ItemType.RawType, 1);
        return SchemaShapes.AddClassifierOutputs(inputSchema, Settings.ScoreColumnName, Settings.PredictedLabelColumnName, key, SchemaShapes.Find(label.Annotations, LabelInfo.KeyValuesKind) is not null);
    }

    /// <summary>Trains on <paramref name="input"/> and returns the fitted model (validating on the validation set given when the trainer was made).</summary>
    public TransformerChain<ITransformer> Fit(IDataView input) => Fit(input, _validationSet);

    /// <summary>Trains on <paramref name="input"/>, validating on <paramref name="validationSet"/>.</summary>
    public TransformerChain<ITransformer> Fit(IDataView input, IDataView? validationSet)
    {
        ArgumentNullException.ThrowIfNull(input);
        GetOutputSchema(SchemaShapes.Of(input.Schema));
        if (validationSet is not null) GetOutputSchema(SchemaShapes.Of(validationSet.Schema));
        using var channel = Environment.Register("MLNet.FastTrain").Start(GetType().Name);

        var labels = LabelInfo.From(input.Schema, Settings.LabelColumnName);
        if (labels.Classes.Count < 2)
            throw new TrainingDataException($"The label column '{Settings.LabelColumnName}' has {labels.Classes.Count} class; a classifier needs at least two.");
        if (validationSet is not null)
        {
            var other = LabelInfo.From(validationSet.Schema, Settings.LabelColumnName);
            if (!other.Classes.SequenceEqual(labels.Classes) && other.Classes.Order(StringComparer.Ordinal).SequenceEqual(labels.Classes.Order(StringComparer.Ordinal)))
                throw new TrainingDataException($"The validation set's label column '{Settings.LabelColumnName}' has the training set's classes in another key order; "
                    + "transform both with the same fitted MapValueToKey.");
            if (!other.Classes.SequenceEqual(labels.Classes))
                throw new TrainingDataException($"The validation set's label column '{Settings.LabelColumnName}' has other classes than the training set's "
                    + $"([{string.Join(", ", other.Classes.Take(10))}] against [{string.Join(", ", labels.Classes.Take(10))}]); map both with the same fitted MapValueToKey.");
        }

        var image = ImageInput.Create(input, Settings.FeatureColumnName, Settings, DefaultImageSize);
        var preprocessing = image.Preprocessing(Builder)?.Fit(input);
        var reading = image.Preprocessing(Builder, tolerant: true)?.Fit(input);
        string? pathColumn = Settings.ImagePathColumnName ?? (input.Schema.GetColumnOrNull("ImagePath") is not null ? "ImagePath" : null);
        var skipped = new List<string>();
        var train = image.Read(reading?.Transform(input) ?? input, Settings.LabelColumnName, pathColumn, labels.Classes, Settings.SkipInvalid, skipped, learnScale: true);
        ImageDataset? valid = validationSet is null ? null
            : image.Read(reading?.Transform(validationSet) ?? validationSet, Settings.LabelColumnName, pathColumn, labels.Classes, Settings.SkipInvalid, skipped, learnScale: false);
        SkippedRows = skipped;
        foreach (var line in skipped) channel.Warning(MessageSensitivity.None, "{0}", line);
        if (train.Count == 0) throw new TrainingDataException($"The training data has no rows{(skipped.Count > 0 ? $" with a readable image ({skipped.Count} left out)" : "")}.");
        if (train.Labels.ToArray().Distinct().Count() < 2)
            throw new TrainingDataException($"Every training row has the class '{labels.Classes[train.LabelOf(0)]}'; a classifier needs rows of at least two classes.");
        if (valid is null && Settings.ValidationFraction > 0 && train.Count >= 20) (train, valid) = train.Split(Settings.ValidationFraction, (ulong)Settings.Seed);
        if (valid is { Count: 0 }) valid = null;
        channel.Info(MessageSensitivity.None, "{0}", $"{train.Count} training and {valid?.Count ?? 0} validation images, {image.Channels} × {image.Height} × {image.Width}, {labels.Classes.Count} classes.");

        var members = Train(train, valid, message => channel.Info(MessageSensitivity.None, "{0}", message));
        var fitted = new FittedClassifier(members, image, preprocessing, Settings.ScoreColumnName, Settings.PredictedLabelColumnName, labels.Classes);
        return ScoringChain.Build(Builder, input, fitted, Settings.TestTimeAugmentation, Settings.TtaBeta);
    }

    /// <summary>The side images are brought to when ImageSize is not set, or null to follow the first image.</summary>
    private protected virtual int? DefaultImageSize => null;

    /// <summary>Trains on the images and returns the model, or the members of an ensemble.</summary>
    private protected abstract IReadOnlyList<TrainedModel> Train(ImageDataset train, ImageDataset? valid, Action<string> log);

    /// <summary>Settles the learning rate: the given one, or the LR finder's suggestion.</summary>
    private protected double ResolveLearningRate(Learner learner, Action<string> log, bool restartsAtPeak)
    {
        if (Settings.LearningRate is double given) return (LearningRate = given).Value;
        var (lr, result) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = Settings.Suggestion, RestartsAtPeak = restartsAtPeak });
        LrFinderResult = result;
        log(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"LR finder suggests {lr:G3} ({Settings.Suggestion.ToString().ToLowerInvariant()} rule)."));
        return (LearningRate = lr).Value;
    }

    /// <summary>The callbacks every fit takes from the options: early stopping (with a validation set) and the time budget.</summary>
    private protected List<Callbacks.Callback> Limits(bool validated, bool atCycleEnds)
    {
        var limits = new List<Callbacks.Callback>();
        if (validated && Settings.EarlyStoppingPatience is int patience) limits.Add(new Callbacks.EarlyStopping("valid_loss", patience, atCycleEnds: atCycleEnds));
        if (Settings.TimeBudget is TimeSpan budget) limits.Add(new Callbacks.TimeBudget(budget));
        return limits;
    }

    /// <summary>A learner for a zoo network, its log forwarded, with fastai's augmentation when asked for.</summary>
    private protected Learner CreateLearner(ImageDataset train, ImageDataset? valid, Action<string> log)
    {
        var learner = Learning.Learner.ForImageClassification(train, valid, Settings.Architecture, Settings.BatchSize, (ulong)Settings.Seed);
        Prepare(learner, log);
        return learner;
    }

    private protected void Prepare(Learner learner, Action<string> log)
    {
        learner.Log += (_, m) => log(m);
        var (gpu, fallback) = CatalogContext.GpuSettings(Environment);
        string device = Settings.Device ?? (gpu is int id ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"cuda:{id}") : "auto");
        string engine = new Engines.EngineChoice(Settings.Backend, device, FallbackToCpu: fallback, Precision: Settings.Precision).ApplyTo(learner, Settings.Architecture);
        log($"Training on the {engine}.");
        if (Settings.Augment && learner.TrainData is DataLoader loader) loader.BatchTransform = Vision.Transforms.Augmentations.BySize();
        if (Settings.Distributed is { } distributed)
        {
            Callbacks.DataParallel.Attach(learner, distributed);
            log($"Data-parallel: rank {learner.Collective.Rank} of {learner.Collective.Size}.");
        }
        Learner = learner;
    }

    private protected static TrainedModel Wrap(Learner learner, ImageDataset train, string architecture) =>
        new(learner.Model, architecture, train.Classes, learner.Normalization!.Value, (train.Channels, train.Height, train.Width));
}
