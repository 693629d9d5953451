using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Models;
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
        Assert.True(failures.IsEmpty, $"{failures.Count} disagreements, for example: {string.Join("; ", failures.Take(5))}");
    }

    /// <summary>Holds the first two forward passes at chosen points and records the network's mode the second one saw.</summary>
    private sealed class ModeProbe(Func<bool> training, ManualResetEventSlim firstInside, ManualResetEventSlim secondInside, ManualResetEventSlim firstDone) : Module
    {
        private int _calls;
        public bool? SecondSawTraining;

        public override Tensor Forward(Tensor input)
        {
            int call = Interlocked.Increment(ref _calls);
            if (call == 1)
            {
                firstInside.Set();
                secondInside.Wait(TimeSpan.FromSeconds(30)); // a timeout shows as the test's failure, not as a crash on this thread
            }
            else if (call == 2)
            {
                secondInside.Set();
                firstDone.Wait(TimeSpan.FromSeconds(30));
                SecondSawTraining = training();
            }
            return input;
        }
    }

    [Fact]
    public void A_prediction_that_ends_while_another_is_running_does_not_switch_the_other_into_training_mode()
    {
        // The interleaving that broke: prediction A starts, prediction B starts, A ends, B is still in the network.
        Module? net = null;
        using ManualResetEventSlim firstInside = new(), secondInside = new(), firstDone = new();
        var probe = new ModeProbe(() => net!.Training, firstInside, secondInside, firstDone);
        net = new Sequential(probe, new Flatten(), new Linear(16, 2, generator: new Generator(1)));
        net.Train(); // as a learner leaves it
        var model = new TrainedModel(net, "simple", ["a", "b"], ([0.5f], [0.25f]), (1, 4, 4));
        var data = new ImageDataset(new byte[16], [0], 1, 4, 4, ["a", "b"]);

        var first = new Thread(() => { model.Predict(data); firstDone.Set(); });
        first.Start();
        Assert.True(firstInside.Wait(TimeSpan.FromSeconds(30)));
        var second = new Thread(() => model.Predict(data));
        second.Start();
        first.Join();
        second.Join();
        Assert.False(probe.SecondSawTraining ?? true, "the second prediction ran with batch norm and dropout in training mode");
    }
}
