using System.Diagnostics;
using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engine.Schedules;
using MLNet.FastTrain.Engines;
using MLNet.FastTrain.Metrics;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Learning;

/// <summary>The loss and metrics of one validation pass.</summary>
public sealed record ValidationResult(double Loss, IReadOnlyDictionary<string, double> Metrics, int Items);

/// <summary>
/// Trains a model: the loop of forward, loss, backward and optimizer step over mini-batches, with callbacks at
/// fixed events, validation after every epoch, and a <see cref="Recorder"/> of everything.
/// </summary>
/// <remarks>
/// The learner runs the model through a <see cref="TrainingEngine"/> (the managed engine unless
/// <see cref="UseEngine"/> says otherwise): the model and optimizer are the description, the engine executes it
/// (docs/design.md §9). Each training step runs in the engine's step scope, so intermediate tensors are released
/// when the step ends; callbacks that need a tensor after the step copy it in <see cref="Callback.AfterLoss"/>.
/// </remarks>
public sealed class Learner
{
    private readonly List<Callback> _callbacks = [];
    // What the events walk: a copy made when the list changes, so a callback may add or remove callbacks during an
    // event without the walk seeing it, and a training step allocates nothing for its events.
    private Callback[] _running = [];
    private TrainingEngine _engine;

    /// <summary>Creates a learner.</summary>
    /// <param name="model">The network; its output is one row of class scores per item.</param>
    /// <param name="train">Training batches.</param>
    /// <param name="valid">Validation batches, or null to skip validation.</param>
    /// <param name="optimizer">
    /// Default, as fastai's: AdamW over all parameters (β 0.9/0.999, decoupled weight decay 0.01). fastai's LR-finder
    /// rules were calibrated with it; with SGD and momentum the valley suggestion measured about 15× below the best
    /// one-cycle rate.
    /// </param>
    /// <param name="metrics">Default: accuracy.</param>
    /// <param name="callbacks">Extra callbacks.</param>
    public Learner(Module model, IBatchSource train, IBatchSource? valid = null, Optimizer? optimizer = null,
        IEnumerable<Metric>? metrics = null, IEnumerable<Callback>? callbacks = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        if (train.BatchCount == 0)
        {
            string what = train is DataLoader loader
                ? $"its {loader.Dataset.Count} images are fewer than one batch of {loader.BatchSize}{(loader.DropLast ? " (a last partial batch is dropped)" : "")}"
                : $"it has no batch of {train.BatchSize}";
            throw new ArgumentException($"The training data yields no batch: {what}. Use a smaller batch size (--batch) or more images.", nameof(train));
        }
        _engine = new ManagedEngine(model, optimizer ?? new AdamW(model.Parameters(), learningRate: 1e-3, weightDecay: 0.01));
        TrainData = train;
        ValidData = valid;
        Metrics = (metrics ?? [new Accuracy()]).ToList();
        Recorder = new Recorder();
        Add(Recorder);
        foreach (var cb in callbacks ?? []) Add(cb);
    }

    /// <summary>
    /// A learner for a fresh model-zoo network on image datasets: training batches shuffled by <paramref name="seed"/>
    /// (dropping a last partial batch), validation normalised with the training set's statistics, the default
    /// optimizer.
    /// </summary>
    public static Learner ForImageClassification(ImageDataset train, ImageDataset? valid, string architecture, int? batchSize = null, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(train);
        int batch = batchSize ?? DefaultBatchSize(train.Count);
        var trainLoader = new DataLoader(train, batch, shuffle: true, seed: seed, dropLast: true);
        var validLoader = valid is null ? null : new DataLoader(valid, 256, shuffle: false, normalization: trainLoader.Normalization);
        var network = Models.TrainedModel.CreateNetwork(architecture, train.Channels, train.Classes.Count, new Generator(seed));
        return new Learner(network, trainLoader, validLoader);
    }

    /// <summary>
    /// A learner for a given network (a pretrained or imported one) with the same data set-up as
    /// <see cref="ForImageClassification(ImageDataset, ImageDataset?, string, int?, ulong)"/> and an optimizer over
    /// <paramref name="groups"/> (for example <see cref="FineTuning.DifferentialFineTune.CreateParamGroups"/>).
    /// </summary>
    public static Learner ForImageClassification(ImageDataset train, ImageDataset? valid, Module network, IEnumerable<ParamGroup>? groups, int? batchSize = null, ulong seed = 0,
        (float[] Mean, float[] Std)? normalization = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(network);
        int batch = batchSize ?? DefaultBatchSize(train.Count);
        // A pretrained body keeps the normalisation it was trained with; otherwise the data's own statistics.
        var trainLoader = new DataLoader(train, batch, shuffle: true, seed: seed, dropLast: true, normalization: normalization);
        var validLoader = valid is null ? null : new DataLoader(valid, 256, shuffle: false, normalization: trainLoader.Normalization);
        return new Learner(network, trainLoader, validLoader, groups is null ? null : new AdamW(groups));
    }

    /// <summary>
    /// A batch size for a training set of <paramref name="items"/>: a power of two near 1/16 of it, between 16 and 128
    /// (small sets get more steps per epoch; large ones the reference workload's 128).
    /// </summary>
    public static int DefaultBatchSize(int items) =>
        Math.Clamp((int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, items / 16)) / 2, 16, 128);

    /// <summary>
    /// The model's description with the engine's current weights (on the managed engine, the network itself; on
    /// others, its weights are copied from the engine when this is read).
    /// </summary>
    public Module Model => _engine.SyncDescription();

    /// <summary>The engine that runs the model.</summary>
    public TrainingEngine Engine => _engine;

    /// <summary>
    /// Moves the learner to another engine, built by <paramref name="factory"/> from the model's description and the
    /// optimizer; weights, buffers and optimizer state come along, so training continues where it was.
    /// </summary>
    public Learner UseEngine(Func<Module, Optimizer, TrainingEngine> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        var model = _engine.SyncDescription();
        var optimizerState = _engine.OptimizerState();
        var engine = factory(model, _engine.Optimizer) ?? throw new ArgumentException("The engine factory returned null.", nameof(factory));
        if (!ReferenceEquals(engine.Description, model) || !ReferenceEquals(engine.Optimizer, _engine.Optimizer))
            throw new ArgumentException("The engine must be built for the learner's own model and optimizer.", nameof(factory));
        engine.LossFunction = _engine.LossFunction;
        engine.LoadOptimizerState(optimizerState);
        engine.Train(_engine.Training);
        if (!ReferenceEquals(engine, _engine)) _engine.Release();
        _engine = engine;
        return this;
    }

    /// <summary>The training data.</summary>
    public IBatchSource TrainData { get; set; }

    /// <summary>The validation data, or null.</summary>
    public IBatchSource? ValidData { get; set; }

    /// <summary>The per-channel normalisation of the training images, when the training data is an image <see cref="DataLoader"/>.</summary>
    public (float[] Mean, float[] Std)? Normalization => TrainData is DataLoader images ? images.Normalization : null;

    /// <summary>
    /// The optimizer; its parameter groups carry the learning rates and other hyperparameters every engine follows
    /// (setting it starts the optimizer's state afresh).
    /// </summary>
    public Optimizer Optimizer
    {
        get => _engine.Optimizer;
        set => _engine.SetOptimizer(value);
    }

    /// <summary>The validation metrics.</summary>
    public IReadOnlyList<Metric> Metrics { get; }

    /// <summary>The loss: logits and labels to a scalar. Default: cross-entropy.</summary>
    /// <remarks>Engines other than the managed one train with cross-entropy and use this only for validation.</remarks>
    public Func<Tensor, int[], Tensor> LossFunction
    {
        get => _engine.LossFunction;
        set => _engine.LossFunction = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Records losses, learning rates and metrics.</summary>
    public Recorder Recorder { get; }

    /// <summary>The callbacks, in the order they run.</summary>
    public IReadOnlyList<Callback> Callbacks => _callbacks;

    /// <summary>Messages for the user (epoch summaries, warnings, why training stopped).</summary>
    public event EventHandler<string>? Log;

    // ---- progress, readable by callbacks ---------------------------------------------------------------------

    /// <summary>Epoch within the current fit (0-based).</summary>
    public int Epoch { get; private set; }

    /// <summary>Epochs in the current fit.</summary>
    public int Epochs { get; private set; }

    /// <summary>Batch within the current epoch (0-based).</summary>
    public int BatchIndex { get; private set; }

    /// <summary>
    /// During an SGDR fit, the last epoch (0-based, of the fit) of each cycle, where the learning rate has annealed;
    /// null in other fits.
    /// </summary>
    public IReadOnlyList<int>? CycleEndEpochs { get; private set; }

    /// <summary>Training step within the current fit (0-based): what schedules are evaluated at.</summary>
    public int Step { get; private set; }

    /// <summary>Training steps the current fit will take.</summary>
    public int TotalSteps => Epochs * TrainData.BatchCount;

    /// <summary>Epochs trained over the learner's life; selects each epoch's shuffle so fits never repeat one.</summary>
    public int EpochsTrained { get; private set; }

    /// <summary>The current training batch.</summary>
    public Batch? CurrentBatch { get; private set; }

    /// <summary>
    /// The current batch's model output (managed engine only, null on others). Valid until the step ends: the managed
    /// engine hands the step's tensor objects to the next step, so take values out (<see cref="Tensor.ToArray"/>) to keep them.
    /// </summary>
    public Tensor? Output { get; private set; }

    /// <summary>The current batch's loss tensor (valid until the step ends, as <see cref="Output"/>).</summary>
    public Tensor? Loss { get; private set; }

    /// <summary>The current batch's loss value.</summary>
    public double LastLoss { get; private set; } = double.NaN;

    /// <summary>The latest validation.</summary>
    public ValidationResult? LastValidation { get; internal set; }

    /// <summary>Why the last fit stopped early, or null.</summary>
    public string? StopReason { get; private set; }

    /// <summary>
    /// The processes this learner trains with: a <see cref="DataParallel"/> callback's collective, or the single
    /// process. What is done once (the LR finder, writing checkpoints) is done by its rank 0.
    /// </summary>
    public Distributed.ICollective Collective => _callbacks.OfType<DataParallel>().FirstOrDefault()?.Collective ?? Distributed.SingleProcess.Instance;

    /// <summary>
    /// Whether <paramref name="cancellationToken"/> is cancelled: on any rank, in data-parallel training, where every
    /// rank asks at the same point and all of them get the same answer.
    /// </summary>
    public bool StopRequested(CancellationToken cancellationToken) =>
        Distributed.CollectiveAgreements.AnyRank(Collective, cancellationToken.IsCancellationRequested);

    /// <summary>Throws <see cref="Distributed.StopRequestedException"/>, on every rank, when <see cref="StopRequested"/>.</summary>
    public void ThrowIfStopRequested(CancellationToken cancellationToken)
    {
        if (StopRequested(cancellationToken))
            throw new Distributed.StopRequestedException(cancellationToken.IsCancellationRequested ? "cancelled" : "cancelled on another rank", cancellationToken);
    }

    /// <summary>
    /// The token this rank may act on by itself: none in data-parallel training, where a rank that stopped alone would
    /// leave the others waiting in their next collective; the ranks stop together where they agree to
    /// (<see cref="ThrowIfStopRequested"/>, <see cref="CancelOnRequest"/>).
    /// </summary>
    public CancellationToken OnThisRankAlone(CancellationToken cancellationToken) => Collective.Size > 1 ? CancellationToken.None : cancellationToken;

    /// <summary>Adds a callback (kept sorted by <see cref="Callback.Order"/>, stable).</summary>
    public Learner Add(Callback callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        int i = _callbacks.FindLastIndex(c => c.Order <= callback.Order);
        _callbacks.Insert(i + 1, callback);
        _running = [.. _callbacks];
        return this;
    }

    /// <summary>Removes a callback.</summary>
    public bool Remove(Callback callback)
    {
        bool removed = _callbacks.Remove(callback);
        if (removed) _running = [.. _callbacks];
        return removed;
    }

    /// <summary>Writes a message to <see cref="Log"/>.</summary>
    public void Write(string message) => Log?.Invoke(this, message);

    /// <summary>
    /// Trains for <paramref name="epochs"/> epochs. Learning rates and momenta come from the optimizer's groups,
    /// which scheduler callbacks may set before every batch.
    /// </summary>
    /// <param name="epochs">Epochs to train.</param>
    /// <param name="extra">Callbacks for this fit only.</param>
    /// <param name="cancellationToken">
    /// Stops training between batches; in data-parallel training every rank stops together, at the start of an epoch
    /// or, with a <see cref="CancelOnRequest"/> callback, at the end of a batch.
    /// </param>
    /// <param name="resume">
    /// A checkpoint of an interrupted fit with the same epochs and callbacks: its state is restored and training
    /// continues from the batch after it, giving bit-identical results to a fit that was never interrupted (same
    /// thread count).
    /// </param>
    public void Fit(int epochs, IEnumerable<Callback>? extra = null, Checkpoint? resume = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(epochs);
        var added = (extra ?? []).ToList();
        foreach (var cb in added) Add(cb);
        Epochs = epochs;
        Step = 0;
        StopReason = null;
        int firstEpoch = 0, skipBatches = 0;
        if (resume is not null)
        {
            if (resume.Epochs != epochs)
                throw new ArgumentException($"The checkpoint belongs to a fit of {resume.Epochs} epochs, not {epochs}.", nameof(resume));
            if (resume.Ranks != Collective.Size)
                throw new ArgumentException($"The checkpoint was written by a run of {resume.Ranks} process(es); resume it with as many (mpirun -np {resume.Ranks}), not {Collective.Size}: each rank's share of every epoch depends on the count.", nameof(resume));
            resume.ApplyTo(this);
            (firstEpoch, skipBatches, Step) = (resume.NextEpoch, resume.NextBatch, resume.NextStep);
        }
        try
        {
            Run(static (c, l) => c.BeforeFit(l));
            for (Epoch = firstEpoch; Epoch < epochs; Epoch++)
            {
                Run(static (c, l) => c.BeforeEpoch(l)); // first: a cancellation between epochs is reported with its checkpoint
                ThrowIfStopRequested(cancellationToken);
                TrainEpoch(skipBatches, OnThisRankAlone(cancellationToken));
                skipBatches = 0;
                if (ValidData is not null)
                {
                    Run(static (c, l) => c.BeforeValidate(l));
                    LastValidation = Validate(ValidData, OnThisRankAlone(cancellationToken));
                    Run(static (c, l) => c.AfterValidate(l));
                }
                EpochsTrained++;
                Run(static (c, l) => c.AfterEpoch(l));
            }
        }
        catch (CancelFitException e)
        {
            StopReason = e.Message;
            Write(e.Message);
        }
        finally
        {
            Run(static (c, l) => c.AfterFit(l));
            foreach (var cb in added) Remove(cb);
            _engine.Train();
        }
    }

    private void TrainEpoch(int skipBatches, CancellationToken cancellationToken)
    {
        TensorScope.TrimPoolUnderHeapLimit(); // validation's memory, under a memory budget
        _engine.Train();
        BatchIndex = skipBatches;
        OfferPixels(TrainData);
        try
        {
            foreach (var batch in TrainData.Epoch(EpochsTrained, skipBatches, cancellationToken))
            {
                CurrentBatch = batch;
                // The batch's memory goes back to the pool when the step ends, for a batch the loader is building.
                using var batchMemory = TensorScope.Begin();
                batch.AdoptIntoScope();
                using (_engine.BeginStep())
                {
                    try
                    {
                        Run(static (c, l) => c.BeforeBatch(l));
                        LastLoss = _engine.Forward(batch);
                        (Output, Loss) = (_engine.Output, _engine.Loss);
                        Run(static (c, l) => c.AfterLoss(l));
                        _engine.Backward();
                        Run(static (c, l) => c.AfterBackward(l));
                        _engine.Step();
                        Run(static (c, l) => c.AfterStep(l));
                    }
                    catch (CancelBatchException)
                    {
                        // the batch is skipped; AfterBatch still runs
                    }
                    Run(static (c, l) => c.AfterBatch(l));
                    Output = null;
                    Loss = null;
                }
                BatchIndex++;
                Step++;
            }
        }
        catch (CancelEpochException e)
        {
            Write(e.Message);
        }
    }

    /// <summary>Mean loss and metrics over a dataset, in evaluation mode, without gradients.</summary>
    public ValidationResult Validate(IBatchSource? data = null, CancellationToken cancellationToken = default)
    {
        data ??= ValidData ?? throw new InvalidOperationException("No validation data: pass a loader or set ValidData.");
        TensorScope.TrimPoolUnderHeapLimit(); // training's memory, under a memory budget
        bool wasTraining = _engine.Training;
        _engine.Train(false);
        OfferPixels(data);
        foreach (var m in Metrics) m.Reset();
        double lossSum = 0;
        int items = 0;
        try
        {
            using var noGrad = GradRecorder.NoGrad();
            foreach (var batch in data.Epoch(0, cancellationToken: cancellationToken))
            {
                using var scope = TensorScope.Begin();
                batch.AdoptIntoScope();
                var output = _engine.Logits(batch);
                lossSum += LossFunction(output, batch.Labels).Item() * batch.Labels.Length;
                items += batch.Labels.Length;
                foreach (var m in Metrics) m.Accumulate(output, batch.Labels);
            }
        }
        finally
        {
            _engine.Train(wasTraining);
        }
        return new ValidationResult(items == 0 ? double.NaN : lossSum / items, Metrics.ToDictionary(m => m.Name, m => m.Value), items);
    }

    /// <summary>Class probabilities for every item of a loader, in its order: [N, classes].</summary>
    public float[][] PredictProbabilities(IBatchSource data, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        bool wasTraining = _engine.Training;
        _engine.Train(false);
        OfferPixels(data);
        var rows = new List<float[]>();
        try
        {
            using var noGrad = GradRecorder.NoGrad();
            foreach (var batch in data.Epoch(0, cancellationToken: cancellationToken))
            {
                using var scope = TensorScope.Begin();
                batch.AdoptIntoScope();
                var p = Functional.Softmax(_engine.Logits(batch), 1);
                int c = p.Size(1);
                var values = p.ToArray();
                for (int i = 0; i < p.Size(0); i++) rows.Add(values.AsSpan(i * c, c).ToArray());
            }
        }
        finally
        {
            _engine.Train(wasTraining);
        }
        return [.. rows];
    }

    /// <summary>
    /// Asks a loader for batches of uint8 pixels when the engine prepares batches on its device, and for host images
    /// otherwise (docs/design.md §9, "Batches on the device").
    /// </summary>
    internal void OfferPixels(IBatchSource data)
    {
        if (data is DataLoader images) images.HandOverPixels = _engine.PreparesBatches;
    }

    /// <summary>Everything needed to put the learner back exactly: weights, buffers, optimizer state and hyperparameters, random state.</summary>
    public LearnerSnapshot Capture() =>
        new(_engine.ModelState(), _engine.OptimizerState(), Generator.Default.GetState(), EpochsTrained);

    /// <summary>Restores a <see cref="Capture"/>.</summary>
    public void Restore(LearnerSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        _engine.LoadModelState(snapshot.Model);
        _engine.LoadOptimizerState(snapshot.Optimizer);
        Generator.Default.SetState(snapshot.RandomState);
        EpochsTrained = snapshot.EpochsTrained;
    }

    internal void SetEpochsTrained(int value) => EpochsTrained = value;

    // ---- fastai's compositions ---------------------------------------------------------------------------------

    /// <summary>
    /// fastai's fit_one_cycle: the learning rate of group g rises to <paramref name="maxLr"/>[g] (one value for all
    /// groups, or one per group) and anneals; momentum cycles 0.95 → 0.85 → 0.95.
    /// </summary>
    public void FitOneCycle(int epochs, double[] maxLr, double pctStart = 0.25, double div = 25, double divFinal = 1e5,
        IEnumerable<Callback>? extra = null, Checkpoint? resume = null, CancellationToken cancellationToken = default)
    {
        int steps = epochs * TrainData.BatchCount;
        var perGroup = ExpandPerGroup(maxLr).Select(lr => new OneCycleSchedule(lr, steps, pctStart, div, divFinal)).ToArray();
        var scheduler = new ParamScheduler(perGroup, perGroup[0].Momentum);
        Fit(epochs, [scheduler, .. extra ?? []], resume, cancellationToken);
    }

    /// <summary>
    /// SGD with warm restarts for <paramref name="cycles"/> cycles: cycle i lasts cycleLength·cycleMult^i epochs.
    /// With <paramref name="snapshots"/>, the weights at the end of each cycle are kept (a snapshot ensemble).
    /// </summary>
    public IReadOnlyList<Engine.Serialization.StateDict> FitSgdr(int cycles, double[] maxLr, int cycleLength = 1, int cycleMult = 1,
        double minLr = 0, bool snapshots = false, IEnumerable<Callback>? extra = null, Checkpoint? resume = null, CancellationToken cancellationToken = default)
    {
        var perGroup = ExpandPerGroup(maxLr).Select(lr => new SgdrSchedule(lr, cycles, TrainData.BatchCount, cycleLength, cycleMult, Math.Min(minLr, lr))).ToArray();
        var snapshot = new SnapshotCallback(perGroup[0].CycleEnds());
        var callbacks = new List<Callback> { new ParamScheduler(perGroup) };
        if (snapshots) callbacks.Add(snapshot);
        CycleEndEpochs = perGroup[0].CycleEnds().Select(step => step / TrainData.BatchCount - 1).ToArray();
        try
        {
            Fit(perGroup[0].Epochs, [.. callbacks, .. extra ?? []], resume, cancellationToken);
        }
        finally
        {
            CycleEndEpochs = null;
        }
        return snapshot.Snapshots;
    }

    private double[] ExpandPerGroup(double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        int groups = Optimizer.Groups.Count;
        if (values.Length == groups) return values;
        if (values.Length == 1) return Enumerable.Repeat(values[0], groups).ToArray();
        throw new ArgumentException($"{values.Length} learning rates for {groups} parameter groups: give one, or one per group.", nameof(values));
    }

    private void Run(Action<Callback, Learner> e)
    {
        foreach (var cb in _running) e(cb, this);
    }
}

/// <summary>A learner's state at one moment (see <see cref="Learner.Capture"/>).</summary>
public sealed record LearnerSnapshot(Engine.Serialization.StateDict Model, Engine.Serialization.StateDict Optimizer, ulong[] RandomState, int EpochsTrained);
