using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain;

/// <summary>Loading data.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822:Mark members as static", Justification = "Catalog members are reached through the context, as in ML.NET.")]
public sealed class DataCatalog
{
    private readonly FastTrainContext _context;

    internal DataCatalog(FastTrainContext context) => _context = context;

    /// <summary>Loads an MNIST-style IDX folder: train-* files as training data, t10k-* as validation data.</summary>
    public (ImageDataset Train, ImageDataset Valid) LoadIdx(string directory, IReadOnlyList<string>? classes = null) => IdxDataset.Load(directory, classes);

    /// <summary>
    /// Loads a folder of images with one sub-folder per class (under train/ and valid/ when present, else a seeded
    /// split); <see cref="ImageFiles.Options"/> sets the size, channels, split and whether bad files are skipped.
    /// </summary>
    public (ImageDataset Train, ImageDataset Valid, ImageLoadReport Report) LoadImageFolder(string directory, ImageFiles.Options? options = null) =>
        ImageFiles.LoadFolder(directory, WithSeed(options));

    /// <summary>Loads the images a CSV of path,label lines lists (paths relative to the CSV), split by a seeded fraction.</summary>
    public (ImageDataset Train, ImageDataset Valid, ImageLoadReport Report) LoadCsv(string path, ImageFiles.Options? options = null) =>
        ImageFiles.LoadCsv(path, WithSeed(options));

    private ImageFiles.Options WithSeed(ImageFiles.Options? options) => options ?? new ImageFiles.Options { Seed = _context.Seed };

    /// <summary>Splits off a seeded fraction of a dataset as validation data.</summary>
    public (ImageDataset Train, ImageDataset Valid) TrainValidSplit(ImageDataset data, double validFraction = 0.2)
    {
        ArgumentNullException.ThrowIfNull(data);
        return data.Split(validFraction, _context.Seed);
    }

    /// <summary>A loader: training loaders shuffle (seeded by the context) and drop the last partial batch.</summary>
    public DataLoader CreateLoader(ImageDataset data, int batchSize, bool training, (float[] Mean, float[] Std)? normalization = null) =>
        new(data, batchSize, shuffle: training, seed: _context.Seed, dropLast: training, normalization);
}

/// <summary>Trainers (estimators): each <c>Fit</c> returns a <see cref="ClassifierTransformer"/>.</summary>
public sealed class TrainersCatalog
{
    private readonly FastTrainContext _context;

    internal TrainersCatalog(FastTrainContext context) => _context = context;

    /// <summary>SGD with warm restarts (see <see cref="SgdrTrainer.Options"/> for the defaults).</summary>
    public SgdrTrainer Sgdr(string architecture = "resnet", double? learningRate = null, int cycles = 3, int cycleLength = 1, int cycleMult = 2) =>
        new(_context, new SgdrTrainer.Options { Architecture = architecture, LearningRate = learningRate, Cycles = cycles, CycleLength = cycleLength, CycleMult = cycleMult });

    /// <summary>SGD with warm restarts, configured in full.</summary>
    public SgdrTrainer Sgdr(SgdrTrainer.Options options) => new(_context, options);

    /// <summary>The one-cycle policy (see <see cref="OneCycleTrainer.Options"/> for the defaults).</summary>
    public OneCycleTrainer OneCycle(string architecture = "resnet", double? learningRate = null, int epochs = 3) =>
        new(_context, new OneCycleTrainer.Options { Architecture = architecture, LearningRate = learningRate, Epochs = epochs });

    /// <summary>The one-cycle policy, configured in full.</summary>
    public OneCycleTrainer OneCycle(OneCycleTrainer.Options options) => new(_context, options);
}

/// <summary>Tuning: the learning-rate range test.</summary>
public sealed class TuningCatalog
{
    private readonly FastTrainContext _context;

    internal TuningCatalog(FastTrainContext context) => _context = context;

    /// <summary>Runs the range test for a fresh network of <paramref name="architecture"/> on <paramref name="train"/>.</summary>
    public LrFinderResult FindLearningRate(ImageDataset train, string architecture = "resnet", int? batchSize = null, LrFinder.Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        var learner = TrainerBase.CreateLearner(_context, train, null, architecture, batchSize);
        return LrFinder.Run(learner, options ?? new LrFinder.Options());
    }
}

/// <summary>Saving and loading trained models.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822:Mark members as static", Justification = "Catalog members are reached through the context, as in ML.NET.")]
public sealed class ModelCatalog
{
    internal ModelCatalog() { }

    /// <summary>Writes a model file.</summary>
    public void Save(ClassifierTransformer model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Save(path);
    }

    /// <summary>Reads a model file.</summary>
    public ClassifierTransformer Load(string path) => new(TrainedModel.Load(path));
}

/// <summary>Scoring helpers: test-time augmentation.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822:Mark members as static", Justification = "Catalog members are reached through the context, as in ML.NET.")]
public sealed class ScoringCatalog
{
    internal ScoringCatalog() { }

    /// <summary>Wraps a trained classifier in test-time augmentation.</summary>
    public TtaScorer Tta(ClassifierTransformer model, TtaScorer.Options? options = null) => new(model, options);
}
