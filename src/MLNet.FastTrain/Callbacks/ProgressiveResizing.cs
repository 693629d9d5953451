using System.Globalization;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Callbacks;

/// <summary>
/// Progressive resizing (fastai): train on small images first, then larger ones — for example 14 → 28 px — so early
/// epochs are cheap. At each change the batch-norm running statistics are refreshed on a few batches at the new
/// size, since activations' statistics depend on the image size. Needs a model that accepts any size (adaptive
/// pooling, as the zoo's ResNet).
/// </summary>
public sealed class ProgressiveResizing : Callback
{
    private readonly IReadOnlyList<(int FromEpoch, int Size)> _schedule;

    /// <summary>Creates the callback from (first epoch of the fit, square size) pairs, e.g. [(0, 14), (2, 28)].</summary>
    public ProgressiveResizing(IReadOnlyList<(int FromEpoch, int Size)> schedule, int refreshBatches = 4)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (schedule.Count == 0 || schedule[0].FromEpoch != 0)
            throw new ArgumentException("The size schedule must start at epoch 0.", nameof(schedule));
        for (int i = 0; i < schedule.Count; i++)
        {
            if (schedule[i].Size < 1) throw new ArgumentException($"Size {schedule[i].Size} at epoch {schedule[i].FromEpoch} must be positive.", nameof(schedule));
            if (i > 0 && schedule[i].FromEpoch <= schedule[i - 1].FromEpoch) throw new ArgumentException("The size schedule's epochs must increase.", nameof(schedule));
        }
        _schedule = schedule;
        RefreshBatches = refreshBatches;
    }

    /// <summary>Batches used to refresh batch-norm statistics after a change (0 skips the refresh).</summary>
    public int RefreshBatches { get; }

    /// <summary>The size served now.</summary>
    public int? CurrentSize { get; private set; }

    /// <inheritdoc />
    public override int Order => -20; // before the schedulers and the batches

    /// <summary>The size for an epoch of the fit.</summary>
    public int SizeAt(int epoch) => _schedule.Last(s => s.FromEpoch <= epoch).Size;

    /// <inheritdoc />
    public override void BeforeEpoch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (learner.TrainData is not DataLoader train) throw new InvalidOperationException("Progressive resizing needs image training data (a DataLoader).");
        int size = SizeAt(learner.Epoch);
        if (size == CurrentSize) return;
        CurrentSize = size;
        TensorScope.TrimPool(); // the previous size's memory will not be asked for again
        train.ImageSize = (size, size);
        if (learner.ValidData is DataLoader valid) valid.ImageSize = (size, size);
        learner.Write(string.Create(CultureInfo.InvariantCulture, $"Progressive resizing: {size}×{size} from epoch {learner.Epoch + 1}."));
        if (RefreshBatches > 0 && learner.Epoch > 0) RefreshStatistics(learner, train);
    }

    /// <inheritdoc />
    public override void AfterFit(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        CurrentSize = null;
    }

    /// <summary>Re-estimates batch-norm running statistics with forward passes (no gradients) at the new size.</summary>
    private void RefreshStatistics(Learner learner, DataLoader train)
    {
        learner.Engine.Train();
        learner.OfferPixels(train);
        foreach (var batch in train.Epoch(learner.EpochsTrained).Take(RefreshBatches))
        {
            using var scope = TensorScope.Begin();
            batch.AdoptIntoScope();
            learner.Engine.Logits(batch);
        }
    }
}
