using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Learning;
using Xunit;

namespace MLNet.FastTrain.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Learner NewLearner() => TestData.SeededLearner();

    private static float[] Weights(Learner l) => TestData.Weights(l);

    [Theory]
    [InlineData(7)]    // mid-epoch
    [InlineData(18)]   // exactly at an epoch boundary (18 batches per epoch)
    [InlineData(29)]
    public void Resuming_from_a_checkpoint_gives_bit_identical_weights(int everyBatches)
    {
        var uninterrupted = NewLearner();
        uninterrupted.FitOneCycle(2, [0.05], extra: [new CheckpointCallback(_dir, everyBatches, keep: 10)]);
        var expected = Weights(uninterrupted);

        var files = Directory.GetFiles(_dir, "checkpoint-*.ftc").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(36 / everyBatches, files.Count);
        var resumed = NewLearner();
        var first = Checkpoint.Load(files[0]);
        Assert.Equal(everyBatches, first.NextStep);
        resumed.FitOneCycle(2, [0.05], resume: first);
        Assert.Equal(expected, Weights(resumed));
    }

    [Fact]
    public void Old_checkpoints_are_pruned_and_the_latest_is_found()
    {
        var learner = NewLearner();
        learner.Fit(2, [new CheckpointCallback(_dir, everyBatches: 4, keep: 2)]);
        var files = Directory.GetFiles(_dir, "checkpoint-*.ftc");
        Assert.Equal(2, files.Length);
        Assert.EndsWith("checkpoint-000000036.ftc", Checkpoint.Latest(_dir), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }

    [Fact]
    public void A_cancellation_between_epochs_stops_with_the_epoch_s_checkpoint_and_resumes_from_it()
    {
        using var stop = new CancellationTokenSource();
        var checkpoints = new CheckpointCallback(_dir);
        var learner = NewLearner();
        // Cancelled right after the first epoch's checkpoint, before the second epoch's first batch.
        learner.Fit(3, [checkpoints, new CancelOnRequest(stop.Token, checkpoints), new CancelAfterEpoch(stop)], cancellationToken: stop.Token);
        Assert.Equal(1, learner.EpochsTrained);
        Assert.Equal($"cancelled; checkpoint written to {Checkpoint.Latest(_dir)}", learner.StopReason);
        Assert.Equal(1, Checkpoint.Load(Checkpoint.Latest(_dir)!).NextEpoch);
    }

    private sealed class CancelAfterEpoch(CancellationTokenSource stop) : Callback
    {
        public override int Order => 55; // after the checkpoint is written
        public override void AfterEpoch(Learner learner) => stop.Cancel();
    }

    [Fact]
    public void A_checkpoint_of_another_fit_or_a_plain_model_file_is_refused()
    {
        var learner = NewLearner();
        learner.Fit(1, [new CheckpointCallback(_dir)]);
        var checkpoint = Checkpoint.Load(Checkpoint.Latest(_dir)!);
        Assert.Equal(1, checkpoint.NextEpoch);
        Assert.Throws<ArgumentException>(() => NewLearner().Fit(3, resume: checkpoint));
        string plain = Path.Combine(_dir, "plain.ftm");
        ModelFile.Save(plain, learner.Model.StateDict());
        var e = Assert.Throws<ModelFileException>(() => Checkpoint.Load(plain));
        Assert.Contains("not a checkpoint", e.Message, StringComparison.Ordinal);
    }
}
