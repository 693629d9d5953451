using MLNet.FastTrain.Vision.Datasets;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>One trained classifier scored from many threads at once gives the answers it gives on one thread.</summary>
public sealed class ConcurrentScoringTests
{
    private const int Threads = 8;

    private static (ClassifierTransformer Model, ImageDataset Valid) Trained()
    {
        var ctx = new FastTrainContext(seed: 1, threads: 2);
        var (train, valid) = ctx.Data.LoadIdx(TestUtilities.RepoPaths.Get("data", "fashion-mnist-mini"));
        var model = ctx.Trainers.OneCycle(new OneCycleTrainer.Options { Architecture = "resnet", LearningRate = 0.003, Epochs = 1, BatchSize = 32 }).Fit(train, valid);
        return (model, valid);
    }

    [Fact]
    public void Eight_threads_predicting_and_transforming_the_same_model_agree_with_one_thread()
    {
        var (model, valid) = Trained();
        var expected = model.Transform(valid).Select(r => r.Score).ToArray();
        var expectedTta = new TtaScorer(model, new TtaScorer.Options { Seed = 3 }).Transform(valid).Select(r => r.Score).ToArray();

        // Every thread starts together and works through all the images from its own starting point, so that
        // different images are in flight on different threads; half of them score whole datasets, with and without TTA.
        using var start = new Barrier(Threads);
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int k = 0; k < valid.Count; k++)
            {
                int i = (k + t * valid.Count / Threads) % valid.Count;
                var row = model.Predict(valid.Pixels(i).ToArray());
                if (!row.Score.SequenceEqual(expected[i])) failures.Add($"thread {t}, image {i}: Predict differs");
                if (t % 2 == 0 && k % 50 == 0)
                {
                    var all = t % 4 == 0 ? model.Transform(valid).Select(r => r.Score).ToArray()
                        : new TtaScorer(model, new TtaScorer.Options { Seed = 3 }).Transform(valid).Select(r => r.Score).ToArray();
                    var want = t % 4 == 0 ? expected : expectedTta;
                    for (int j = 0; j < all.Length; j++) if (!all[j].SequenceEqual(want[j])) failures.Add($"thread {t}: {(t % 4 == 0 ? "Transform" : "TTA")} differs at {j}");
                }
            }
        })).ToList();
        threads.ForEach(th => th.Start());
        threads.ForEach(th => th.Join());
        Assert.Empty(failures.Take(5));
    }
}
