using MLNet.FastTrain.Distributed;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// Synchronous data parallelism (docs/design.md §11): each rank trains on its shard of every epoch's order, and after
/// every backward pass the gradients are averaged over the ranks, before clipping and the optimizer step, so every
/// rank takes the same step. Give each rank's learner its local batch size: the global batch is that times the rank
/// count. Every fit starts from rank 0's weights; before each validation the batch-norm statistics (gathered per
/// rank) are averaged over the ranks, and rank 0's validation result is every rank's, so decisions taken on it
/// (early stopping, the best epoch) are the same everywhere.
/// </summary>
public sealed class DataParallel : Callback
{
    private readonly ICollective _collective;

    private DataParallel(ICollective collective) => _collective = collective;

    /// <summary>After the recorder, before gradient clipping.</summary>
    public override int Order => 5;

    /// <summary>The collective the gradients are averaged over.</summary>
    public ICollective Collective => _collective;

    /// <summary>
    /// Adds data-parallel training to <paramref name="learner"/> (its loader's batch size is each rank's): averaged
    /// gradients, and the linear scaling rule (<see cref="LinearLrScaling"/>) unless the options turn it off.
    /// </summary>
    public static Learner Attach(Learner learner, DataParallelOptions options)
    {
        ArgumentNullException.ThrowIfNull(learner);
        ArgumentNullException.ThrowIfNull(options);
        var collective = options.Collective ?? throw new ArgumentException("DataParallelOptions.Collective is not set: start one (MpiCollective.Start()).", nameof(options));
        if (!(options.WarmupEpochs >= 0)) throw new ArgumentOutOfRangeException(nameof(options), options.WarmupEpochs, "DataParallelOptions.WarmupEpochs cannot be negative.");
        if (learner.Callbacks.OfType<DataParallel>().Any()) throw new InvalidOperationException("The learner already trains data-parallel.");
        // Sharded now, before any fit: the schedules count an epoch's steps when a fit is set up.
        Shard(learner, collective);
        learner.Add(new DataParallel(collective));
        if (options.ScaleLearningRate && collective.Size > 1)
        {
            // Each rank takes about 1/N of an epoch's batches.
            int warmupSteps = (int)Math.Ceiling(options.WarmupEpochs * learner.TrainData.BatchCount / collective.Size);
            learner.Add(new LinearLrScaling(collective.Size, warmupSteps));
        }
        return learner;
    }

    // This rank reads its part of each epoch's order.
    private static void Shard(Learner learner, ICollective collective)
    {
        if (learner.TrainData is not DataLoader loader)
            throw new InvalidOperationException($"Data-parallel training shards a DataLoader; the training data is a {learner.TrainData.GetType().Name}.");
        loader.Shard = (collective.Rank, collective.Size);
    }

    /// <summary>Keeps the training loader sharded (it may have been replaced) and starts every rank from rank 0's weights.</summary>
    public override void BeforeFit(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        Shard(learner, _collective);
        if (_collective.Size == 1) return;
        var state = learner.Engine.ModelState();
        _collective.Broadcast(state);
        learner.Engine.LoadModelState(state);
    }

    /// <inheritdoc />
    public override void AfterBackward(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        learner.Engine.AllReduceGradients(_collective);
    }

    /// <summary>Averages the buffers (batch norm's running statistics, which each rank gathered on its own shard) over the ranks.</summary>
    public override void BeforeValidate(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (_collective.Size == 1) return;
        var buffers = learner.Engine.Description.NamedBuffers().Select(kv => kv.Key).ToList();
        if (buffers.Count == 0) return;
        var state = learner.Engine.ModelState();
        _collective.Average(state, buffers);
        learner.Engine.LoadModelState(state);
    }

    /// <summary>Makes rank 0's validation result every rank's.</summary>
    public override void AfterValidate(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (_collective.Size == 1 || learner.LastValidation is not { } mine) return;
        var names = mine.Metrics.Keys.ToList();
        double loss = _collective.Broadcast(mine.Loss);
        var metrics = names.ToDictionary(n => n, n => _collective.Broadcast(mine.Metrics[n]));
        learner.LastValidation = mine with { Loss = loss, Metrics = metrics };
    }
}

/// <summary>Data-parallel training's settings (docs/design.md §11), for <see cref="DataParallel.Attach"/> and the trainers' options.</summary>
public sealed class DataParallelOptions
{
    /// <summary>The processes that train together (an MPI world: <c>MpiCollective.Start()</c> of MLNet.FastTrain.Mpi).</summary>
    public ICollective? Collective { get; set; }

    /// <summary>
    /// Train at the rank count times the learning rate (the linear scaling rule of Goyal et al., 2017: the global
    /// batch is that many times larger). Default true.
    /// </summary>
    public bool ScaleLearningRate { get; set; } = true;

    /// <summary>Epochs at the start of each fit over which the scaled rate is reached linearly. Default 0.</summary>
    public double WarmupEpochs { get; set; }
}
