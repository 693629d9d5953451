using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.TestUtilities;
using Xunit;

namespace MLNet.FastTrain.Tests;

public sealed class ContextTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ctx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Data => RepoPaths.Get("data", "fashion-mnist-mini");

    [Fact]
    public void Sgdr_trainer_fits_transforms_and_round_trips_through_a_model_file()
    {
        var ctx = new FastTrainContext(seed: 1, threads: 2);
        var log = new List<string>();
        ctx.Log += (_, m) => log.Add(m);
        var (train, valid) = ctx.Data.LoadIdx(Data);
        var trainer = ctx.Trainers.Sgdr(new SgdrTrainer.Options { Architecture = "simple", LearningRate = 0.003, Cycles = 2, BatchSize = 32 });
        var model = trainer.Fit(train, valid);

        Assert.Equal(3, trainer.LastLearner!.Recorder.Epochs.Count);            // 1 + 2 epochs
        Assert.Contains(log, m => m.StartsWith("epoch 3/3", StringComparison.Ordinal));
        var rows = model.Transform(valid);
        Assert.Equal(200, rows.Count);
        Assert.All(rows, r => Assert.Equal(1.0, r.Score.Sum(), 4));
        Assert.All(rows, r => Assert.Equal(model.Classes[Array.IndexOf(r.Score, r.Score.Max())], r.PredictedLabel));
        var report = model.Evaluate(valid);
        Assert.True(report.Accuracy > 0.5, $"accuracy {report.Accuracy}");

        string path = Path.Combine(_dir, "m.ftm");
        ctx.Model.Save(model, path);
        var loaded = ctx.Model.Load(path);
        Assert.Equal(rows.Select(r => r.Score), loaded.Transform(valid).Select(r => r.Score));
        var one = loaded.Predict(valid.Pixels(0).ToArray());
        Assert.Equal(rows[0].Score, one.Score);
        Assert.Throws<ArgumentException>(() => loaded.Predict(new byte[10]));
    }

    [Fact]
    public void Same_seed_same_model()
    {
        float[] Train()
        {
            var ctx = new FastTrainContext(seed: 4, threads: 2);
            var (train, valid) = ctx.Data.LoadIdx(Data);
            var model = ctx.Trainers.OneCycle(new OneCycleTrainer.Options { Architecture = "simple", LearningRate = 0.003, Epochs = 1, BatchSize = 64 }).Fit(train, valid);
            return model.Model.Network.StateDict().Values.SelectMany(t => t.ToArray()).ToArray();
        }
        Assert.Equal(Train(), Train());
    }

    [Fact]
    public void Snapshot_ensemble_averages_its_cycles()
    {
        var ctx = new FastTrainContext(seed: 2, threads: 2);
        var (train, valid) = ctx.Data.LoadIdx(Data);
        var model = ctx.Trainers.Sgdr(new SgdrTrainer.Options { Architecture = "simple", LearningRate = 0.003, Cycles = 2, CycleMult = 1, BatchSize = 64, SnapshotEnsemble = true }).Fit(train, valid);
        Assert.Equal(2, model.EnsembleSize);
        Assert.All(model.Transform(valid), r => Assert.Equal(1.0, r.Score.Sum(), 4));
    }

    [Fact]
    public void Tuning_catalog_runs_the_lr_finder_and_bad_settings_are_named()
    {
        var ctx = new FastTrainContext(seed: 1, threads: 2);
        var (train, _) = ctx.Data.LoadIdx(Data);
        var result = ctx.Tuning.FindLearningRate(train, "simple", batchSize: 32);
        Assert.True(result.Suggested > 0);
        Assert.Throws<ArgumentException>(() => ctx.Trainers.Sgdr("vgg").Fit(train));
        Assert.Throws<ArgumentOutOfRangeException>(() => ctx.Trainers.OneCycle("simple", learningRate: -1).Fit(train));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FastTrainContext(seed: -1));
        File.WriteAllText(Path.Combine(_dir, "x.ftm"), "hello");
        Assert.Equal(ModelFileError.NotAModelFile, Assert.Throws<ModelFileException>(() => ctx.Model.Load(Path.Combine(_dir, "x.ftm"))).Error);
        var (a, b) = ctx.Data.TrainValidSplit(train, 0.25);
        Assert.Equal((450, 150), (a.Count, b.Count));
    }
}
