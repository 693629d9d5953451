using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain;

/// <summary>Settings every trainer has.</summary>
public abstract class TrainerOptions
{
    /// <summary>Model-zoo network: "resnet" (default), "resnet-wide", "simple", "resnet18" or "resnet34".</summary>
    public string Architecture { get; set; } = "resnet";

    /// <summary>The peak learning rate; null (default) runs the LR finder.</summary>
    public double? LearningRate { get; set; }

    /// <summary>Images per batch (each process's, when distributed); null picks one from the data size.</summary>
    public int? BatchSize { get; set; }

    /// <summary>Train data-parallel with the other processes of an MPI job (docs/design.md §11); null (default): this process alone.</summary>
    public DataParallelOptions? Distributed { get; set; }
}

/// <summary>What the trainers share: building the learner, finding the learning rate, wrapping the result.</summary>
public abstract class TrainerBase
{
    private protected TrainerBase(FastTrainContext context) => Context = context;

    private protected FastTrainContext Context { get; }

    /// <summary>The learning rate the last <c>Fit</c> used (found or given).</summary>
    public double? LastLearningRate { get; private protected set; }

    /// <summary>The LR finder's result of the last <c>Fit</c>, when it ran.</summary>
    public LrFinderResult? LastLrFinder { get; private protected set; }

    /// <summary>The learner of the last <c>Fit</c>, with its recorder.</summary>
    public Learner? LastLearner { get; private protected set; }

    internal static Learner CreateLearner(FastTrainContext context, ImageDataset train, ImageDataset? valid, string architecture, int? batchSize)
    {
        var learner = Learner.ForImageClassification(train, valid, architecture, batchSize, context.Seed);
        learner.Log += context.Write;
        return learner;
    }

    /// <summary>Builds the learner for a fit and settles its learning rate (given, or found by the LR finder).</summary>
    private protected (Learner Learner, double LearningRate) Prepare(ImageDataset train, ImageDataset? valid, TrainerOptions options, bool restartsAtPeak, CancellationToken cancellationToken)
    {
        var learner = CreateLearner(Context, train, valid, options.Architecture, options.BatchSize);
        if (options.Distributed is { } distributed) DataParallel.Attach(learner, distributed);
        LastLearner = learner;
        LastLearningRate = ResolveLearningRate(learner, options.LearningRate, restartsAtPeak, cancellationToken);
        return (learner, LastLearningRate.Value);
    }

    private double ResolveLearningRate(Learner learner, double? given, bool restartsAtPeak, CancellationToken cancellationToken)
    {
        if (given is double lr)
        {
            if (!(lr > 0)) throw new ArgumentOutOfRangeException(nameof(given), $"The learning rate must be positive, not {lr}.");
            return lr;
        }
        (double suggested, LastLrFinder) = LrFinder.Suggest(learner, new LrFinder.Options { RestartsAtPeak = restartsAtPeak }, cancellationToken);
        return suggested;
    }

    private protected static ClassifierTransformer Wrap(Learner learner, ImageDataset train, string architecture, IReadOnlyList<Engine.Serialization.StateDict>? snapshots = null)
    {
        var model = new TrainedModel(learner.Model, architecture, train.Classes, learner.Normalization!.Value, (train.Channels, train.Height, train.Width));
        if (snapshots is null || snapshots.Count < 2) return new ClassifierTransformer(model);
        var members = snapshots.Select(state =>
        {
            var net = TrainedModel.CreateNetwork(architecture, train.Channels, train.Classes.Count);
            net.LoadStateDict(state);
            return new TrainedModel(net, architecture, train.Classes, model.Normalization, model.InputSize);
        }).ToList();
        return new ClassifierTransformer(members);
    }
}

/// <summary>SGD with warm restarts (Loshchilov and Hutter, 2017), per mini-batch cosine annealing.</summary>
public sealed class SgdrTrainer : TrainerBase
{
    private readonly Options _options;

    internal SgdrTrainer(FastTrainContext context, Options options) : base(context) => _options = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>SGDR settings.</summary>
    public sealed class Options : TrainerOptions
    {
        /// <summary>Cycles. Default 3.</summary>
        public int Cycles { get; set; } = 3;

        /// <summary>Epochs in the first cycle (fastai's cycle_len). Default 1.</summary>
        public int CycleLength { get; set; } = 1;

        /// <summary>Growth of each cycle (fastai's cycle_mult). Default 2.</summary>
        public int CycleMult { get; set; } = 2;

        /// <summary>The floor of each cycle. Default 0.</summary>
        public double MinLr { get; set; }

        /// <summary>Keep the weights at the end of each cycle and average their probabilities (a snapshot ensemble). Default false.</summary>
        public bool SnapshotEnsemble { get; set; }

        /// <summary>
        /// Stop when the validation loss at the end of a cycle has not improved for this many further cycles, and keep
        /// the best cycle's weights (0: the first cycle that ends no better stops it; null: train every cycle).
        /// </summary>
        public int? EarlyStoppingPatience { get; set; }
    }

    /// <summary>Trains and returns the classifier.</summary>
    public ClassifierTransformer Fit(ImageDataset train, ImageDataset? valid = null, CancellationToken cancellationToken = default)
    {
        var (learner, lr) = Prepare(train, valid, _options, restartsAtPeak: true, cancellationToken);
        var extra = new List<Callback>();
        if (_options.EarlyStoppingPatience is int patience && valid is not null) extra.Add(new EarlyStopping("valid_loss", patience, atCycleEnds: true));
        var snapshots = learner.FitSgdr(_options.Cycles, [lr], _options.CycleLength, _options.CycleMult, _options.MinLr, _options.SnapshotEnsemble, extra, cancellationToken: cancellationToken);
        return Wrap(learner, train, _options.Architecture, _options.SnapshotEnsemble ? snapshots : null);
    }
}

/// <summary>The one-cycle policy (Smith, 2018) as fastai's fit_one_cycle.</summary>
public sealed class OneCycleTrainer : TrainerBase
{
    private readonly Options _options;

    internal OneCycleTrainer(FastTrainContext context, Options options) : base(context) => _options = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>One-cycle settings; defaults are fastai's.</summary>
    public sealed class Options : TrainerOptions
    {
        /// <summary>Epochs. Default 3.</summary>
        public int Epochs { get; set; } = 3;

        /// <summary>Fraction of steps spent warming up. Default 0.25.</summary>
        public double PctStart { get; set; } = 0.25;

        /// <summary>Start at peak / Div. Default 25.</summary>
        public double Div { get; set; } = 25;

        /// <summary>End at peak / DivFinal. Default 1e5.</summary>
        public double DivFinal { get; set; } = 1e5;
    }

    /// <summary>Trains and returns the classifier.</summary>
    public ClassifierTransformer Fit(ImageDataset train, ImageDataset? valid = null, CancellationToken cancellationToken = default)
    {
        var (learner, lr) = Prepare(train, valid, _options, restartsAtPeak: false, cancellationToken);
        learner.FitOneCycle(_options.Epochs, [lr], _options.PctStart, _options.Div, _options.DivFinal, cancellationToken: cancellationToken);
        return Wrap(learner, train, _options.Architecture);
    }
}
