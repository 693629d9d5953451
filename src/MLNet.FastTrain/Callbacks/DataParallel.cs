using MLNet.FastTrain.Distributed;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// Synchronous data parallelism (docs/design.md §11): each rank trains on its shard of every epoch's order, and after
/// every backward pass the gradients are averaged over the ranks, before clipping and the optimizer step, so every
/// rank takes the same step. Give each rank's learner the local batch size (the global batch over the rank count).
/// </summary>
public sealed class DataParallel(ICollective collective) : Callback
{
    private readonly ICollective _collective = collective ?? throw new ArgumentNullException(nameof(collective));

    /// <summary>After the recorder, before gradient clipping.</summary>
    public override int Order => 5;

    /// <summary>The collective the gradients are averaged over.</summary>
    public ICollective Collective => _collective;

    /// <summary>Shards the training loader: this rank reads its part of each epoch's order.</summary>
    public override void BeforeFit(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (learner.TrainData is not DataLoader loader)
            throw new InvalidOperationException($"Data-parallel training shards a DataLoader; the training data is a {learner.TrainData.GetType().Name}.");
        loader.Shard = (_collective.Rank, _collective.Size);
    }

    /// <inheritdoc />
    public override void AfterBackward(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        learner.Engine.AllReduceGradients(_collective);
    }
}
