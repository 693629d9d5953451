using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engine.Schedules;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Metrics;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class LearnerTests
{
    internal static Learner NewLearner(double lr = 0.05, IEnumerable<Metric>? metrics = null)
    {
        var (train, valid) = TestData.Loaders();
        var net = TestData.TinyNet();
        return new Learner(net, train, valid, new Sgd(net.Parameters(), lr, momentum: 0.9), metrics);
    }

    [Fact]
    public void ATrainingSetSmallerThanOneBatchIsRefusedWithItsCounts()
    {
        var tiny = new Vision.Datasets.ImageDataset(new byte[10 * 16], [0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 1, 4, 4, ["a", "b"]);
        var e = Assert.Throws<ArgumentException>(() => Learner.ForImageClassification(tiny, null, "resnet", batchSize: 16));
        Assert.Equal("train", e.ParamName);
        Assert.Contains("its 10 images are fewer than one batch of 16", e.Message, StringComparison.Ordinal);
        // One full batch is enough.
        Assert.NotNull(Learner.ForImageClassification(tiny, null, "resnet", batchSize: 10));
    }

    /// <summary>Writes down every event it sees.</summary>
    private sealed class EventLog(int order = 10) : Callback
    {
        public List<string> Events { get; } = [];

        public override int Order => order;

        public override void BeforeFit(Learner l) => Events.Add("BeforeFit");

        public override void BeforeEpoch(Learner l) => Events.Add("BeforeEpoch");

        public override void BeforeBatch(Learner l) => Events.Add("BeforeBatch");

        public override void AfterLoss(Learner l) => Events.Add("AfterLoss");

        public override void AfterBackward(Learner l) => Events.Add("AfterBackward");

        public override void AfterStep(Learner l) => Events.Add("AfterStep");

        public override void AfterBatch(Learner l) => Events.Add("AfterBatch");

        public override void BeforeValidate(Learner l) => Events.Add("BeforeValidate");

        public override void AfterValidate(Learner l) => Events.Add("AfterValidate");

        public override void AfterEpoch(Learner l) => Events.Add("AfterEpoch");

        public override void AfterFit(Learner l) => Events.Add("AfterFit");
    }

    [Fact]
    public void Fit_learns_and_validates_every_epoch()
    {
        var learner = NewLearner();
        var messages = new List<string>();
        learner.Log += (_, m) => messages.Add(m);
        learner.Fit(3);
        Assert.Equal(3, learner.Recorder.Epochs.Count);
        Assert.Equal(3 * 18, learner.Recorder.Batches.Count);
        var first = learner.Recorder.Epochs[0];
        var last = learner.Recorder.Epochs[^1];
        Assert.True(last.TrainLoss < first.TrainLoss, $"train loss {first.TrainLoss} → {last.TrainLoss}");
        Assert.True(last.Metrics["accuracy"] > 0.5, $"accuracy {last.Metrics["accuracy"]}");
        Assert.Equal(200, learner.LastValidation!.Items);
        Assert.Equal(3, messages.Count(m => m.StartsWith("epoch ", StringComparison.Ordinal)));
        Assert.Contains("valid_loss", messages[^1], StringComparison.Ordinal);
        // The training part of an epoch is timed apart from its validation.
        Assert.All(learner.Recorder.Epochs, e => Assert.InRange(e.TrainSeconds, 1e-6, e.Seconds));
        Assert.All(learner.Recorder.Epochs, e => Assert.True(e.TrainSeconds < e.Seconds));
    }

    [Fact]
    public void Events_arrive_in_the_documented_order()
    {
        var learner = NewLearner();
        var log = new EventLog();
        learner.Add(log);
        learner.TrainData = ((Vision.Datasets.DataLoader)learner.TrainData).WithBatchSize(300); // 2 batches
        learner.Fit(1);
        string[] batch = ["BeforeBatch", "AfterLoss", "AfterBackward", "AfterStep", "AfterBatch"];
        Assert.Equal(["BeforeFit", "BeforeEpoch", .. batch, .. batch, "BeforeValidate", "AfterValidate", "AfterEpoch", "AfterFit"], log.Events);
    }

    [Fact]
    public void Callbacks_run_by_order_then_insertion()
    {
        var learner = NewLearner();
        var seen = new List<string>();
        learner.Add(new Probe(20, "late", seen)).Add(new Probe(-5, "early", seen)).Add(new Probe(20, "later", seen));
        Assert.Equal(["early", "recorder", "late", "later"], learner.Callbacks.Select(c => c is Probe p ? p.Name : "recorder"));
    }

    private sealed class Probe(int order, string name, List<string> seen) : Callback
    {
        public string Name => name;

        public override int Order => order;

        public override void BeforeFit(Learner learner) => seen.Add(name);
    }

    private sealed class Canceller(string what, int atBatch) : Callback
    {
        public override void AfterLoss(Learner learner)
        {
            if (learner.BatchIndex != atBatch) return;
            throw what switch
            {
                "batch" => new CancelBatchException(),
                "epoch" => new CancelEpochException(),
                _ => new CancelFitException("stop requested by test"),
            };
        }
    }

    [Fact]
    public void Cancelling_a_batch_skips_its_step()
    {
        var learner = NewLearner();
        var steps = new StepCounter();
        learner.Fit(1, [new Canceller("batch", 2), steps]);
        Assert.Equal(17, steps.Steps);
        Assert.Equal(18, learner.Recorder.Batches.Count); // AfterBatch still ran
    }

    [Fact]
    public void Cancelling_an_epoch_still_validates_and_cancelling_fit_stops_with_a_reason()
    {
        var learner = NewLearner();
        var log = new EventLog();
        learner.Fit(2, [new Canceller("epoch", 3), log]);
        Assert.Equal(2, log.Events.Count(e => e == "AfterValidate"));
        Assert.Equal(2 * 4, log.Events.Count(e => e == "BeforeBatch"));

        var log2 = new EventLog();
        learner.Fit(3, [new Canceller("fit", 1), log2]);
        Assert.Equal("stop requested by test", learner.StopReason);
        Assert.Equal("AfterFit", log2.Events[^1]);
        Assert.DoesNotContain("AfterEpoch", log2.Events);
    }

    private sealed class StepCounter : Callback
    {
        public int Steps { get; private set; }

        public override void AfterStep(Learner learner) => Steps++;
    }

    [Fact]
    public void One_cycle_sets_the_schedule_on_every_batch()
    {
        var learner = NewLearner();
        learner.FitOneCycle(2, [0.1]);
        var expected = new OneCycleSchedule(0.1, 36);
        var records = learner.Recorder.Batches;
        Assert.Equal(36, records.Count);
        for (int i = 0; i < 36; i++)
        {
            Assert.Equal(expected.At(i), records[i].LearningRates[0], 12);
            Assert.Equal(expected.Momentum.At(i), records[i].Momentum!.Value, 12);
        }
    }

    [Fact]
    public void Sgdr_runs_its_cycles_and_keeps_snapshots()
    {
        var learner = NewLearner();
        var snapshots = learner.FitSgdr(cycles: 2, [0.05], cycleLength: 1, cycleMult: 2, snapshots: true);
        Assert.Equal(3, learner.Recorder.Epochs.Count);                          // 1 + 2 epochs
        Assert.Equal(2, snapshots.Count);
        var lrs = learner.Recorder.Batches.Select(b => b.LearningRates[0]).ToArray();
        Assert.Equal(0.05, lrs[0], 12);
        Assert.Equal(0.05, lrs[18], 12);                                         // restart after one epoch
        Assert.True(lrs[17] < 0.001);
        Assert.Equal(learner.Model.StateDict()["8.weight"].ToArray(), snapshots[1]["8.weight"].ToArray()); // last snapshot = final weights
        Assert.NotEqual(snapshots[0]["8.weight"].ToArray(), snapshots[1]["8.weight"].ToArray());
    }

    [Fact]
    public void Per_group_rates_must_match_the_groups()
    {
        var learner = NewLearner();
        Assert.Throws<ArgumentException>(() => learner.FitOneCycle(1, [0.1, 0.01]));
    }

    /// <summary>A metric that reports scripted values, one per validation pass.</summary>
    private sealed class ScriptedMetric(params double[] values) : Metric
    {
        private int _pass = -1;

        public override string Name => "scripted";

        public override void Reset() => _pass++;

        public override void Accumulate(Tensor logits, ReadOnlySpan<int> labels) { }

        public override double Value => values[Math.Min(_pass, values.Length - 1)];
    }

    private sealed class WeightHistory : Callback
    {
        public List<float[]> AfterEachEpoch { get; } = [];

        public override void AfterEpoch(Learner learner) => AfterEachEpoch.Add(learner.Model.StateDict()["8.weight"].ToArray());
    }

    [Fact]
    public void Early_stopping_stops_after_patience_and_restores_the_best_epoch()
    {
        var learner = NewLearner(metrics: [new ScriptedMetric(0.5, 0.7, 0.6, 0.65, 0.9)]);
        var history = new WeightHistory();
        var stop = new EarlyStopping("scripted", patience: 1);
        learner.Fit(5, [history, stop]);
        Assert.Equal(4, history.AfterEachEpoch.Count);                           // stopped after the 2nd bad epoch
        Assert.Equal(1, stop.BestEpoch);
        Assert.Equal(0.7, stop.Best);
        Assert.Contains("not improved", learner.StopReason, StringComparison.Ordinal);
        Assert.Equal(history.AfterEachEpoch[1], learner.Model.StateDict()["8.weight"].ToArray());
    }

    [Fact]
    public void Early_stopping_at_cycle_ends_judges_annealed_epochs_only_and_counts_cycles()
    {
        // SGDR with cycles of 1, 2, 4 and 8 epochs ends its cycles after epochs 0, 2, 6 and 14. The mid-cycle values
        // (0.9, 0.95, 0.99) would stop an every-epoch judge at epoch 2.
        double[] script = [0.5, 0.9, 0.6, 0.95, 0.99, 0.4, 0.55, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7];
        var everyEpoch = NewLearner(metrics: [new ScriptedMetric(script)]);
        everyEpoch.FitSgdr(4, [0.05], cycleLength: 1, cycleMult: 2, extra: [new EarlyStopping("scripted", patience: 0)]);
        Assert.Equal(3, everyEpoch.Recorder.Epochs.Count);

        var learner = NewLearner(metrics: [new ScriptedMetric(script)]);
        var history = new WeightHistory();
        var stop = new EarlyStopping("scripted", patience: 0, atCycleEnds: true);
        learner.FitSgdr(4, [0.05], cycleLength: 1, cycleMult: 2, extra: [history, stop]);
        Assert.Equal(7, history.AfterEachEpoch.Count);                           // third cycle ended worse: stop there
        Assert.Equal(2, stop.BestEpoch);
        Assert.Equal(0.6, stop.Best);
        Assert.Contains("1 cycles", learner.StopReason, StringComparison.Ordinal);
        Assert.Equal(history.AfterEachEpoch[2], learner.Model.StateDict()["8.weight"].ToArray());
        Assert.Null(learner.CycleEndEpochs);                                     // only during the SGDR fit
    }

    [Fact]
    public void Early_stopping_names_an_unknown_monitor()
    {
        var learner = NewLearner();
        var e = Assert.Throws<InvalidOperationException>(() => learner.Fit(1, [new EarlyStopping("f1")]));
        Assert.Contains("f1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Divergence_guard_stops_and_restores_the_epoch_start()
    {
        var learner = NewLearner(lr: 1e4);
        var initial = learner.Model.StateDict().Clone();
        learner.Fit(2, [new DivergenceGuard()]);
        Assert.NotNull(learner.StopReason);
        Assert.Contains("diverged", learner.StopReason, StringComparison.Ordinal);
        Assert.Contains("lower learning rate", learner.StopReason, StringComparison.Ordinal);
        foreach (var (name, t) in initial) Assert.Equal(t.ToArray(), learner.Model.StateDict()[name].ToArray());
    }

    [Fact]
    public void Gradient_clipping_bounds_the_gradient_norm()
    {
        var learner = NewLearner();
        var probe = new NormProbe();
        learner.Fit(1, [new GradientClipping(0.5), probe]);
        Assert.All(probe.Norms, n => Assert.True(n <= 0.5 + 1e-4, $"norm {n}"));
    }

    private sealed class NormProbe : Callback
    {
        public List<double> Norms { get; } = [];

        public override int Order => 20; // after the clipping

        public override void AfterBackward(Learner learner) =>
            Norms.Add(Math.Sqrt(learner.Optimizer.Groups.SelectMany(g => g.Parameters).Where(p => p.Grad is not null)
                .Sum(p => p.Grad!.ToArray().Sum(v => (double)v * v))));
    }

    [Fact]
    public void Time_budget_stops_the_fit_cleanly()
    {
        var learner = NewLearner();
        var budget = new TimeBudget(TimeSpan.FromMilliseconds(1));
        learner.Fit(3, [budget]);
        Assert.True(budget.Exhausted);
        Assert.Contains("time budget", learner.StopReason, StringComparison.Ordinal);
        Assert.Single(learner.Recorder.Batches);                                   // stopped after the first batch
        Assert.Throws<ArgumentOutOfRangeException>(() => new TimeBudget(TimeSpan.Zero));
    }

    [Fact]
    public void Metrics_compute_accuracy_top_k_and_error_rate()
    {
        var logits = Tensor.FromArray(new float[] { 0.1f, 0.9f, 0.0f, 0.8f, 0.1f, 0.1f, 0.3f, 0.3f, 0.4f }, 3, 3);
        int[] labels = [1, 1, 0];
        var acc = new Accuracy();
        var top2 = new TopKAccuracy(2);
        var err = new ErrorRate();
        foreach (var m in new Metric[] { acc, top2, err }) { m.Reset(); m.Accumulate(logits, labels); }
        Assert.Equal(1 / 3.0, acc.Value, 12);
        Assert.Equal(1.0, top2.Value, 12);       // row 1: class 1 ties for second; row 2: class 0 ties for second (ties go to the lower index)
        Assert.Equal(2 / 3.0, err.Value, 12);
        Assert.Equal("top2_accuracy", top2.Name);

        // A diverged model (NaN scores) is wrong, not right.
        acc.Reset();
        acc.Accumulate(Tensor.Full([2, 3], double.NaN), [0, 1]);
        Assert.Equal(0, acc.Value);
    }

    [Fact]
    public void A_callback_added_during_an_event_gets_the_events_after_it()
    {
        var learner = NewLearner();
        var late = new EventLog();
        var adder = new AddOnFirstBatch(late);
        learner.Add(adder);
        learner.Fit(1);
        // Added in the first BeforeBatch: not called for that BeforeBatch, called from that step's AfterLoss on.
        Assert.Equal("AfterLoss", late.Events[0]);
        Assert.Equal(learner.Recorder.Batches.Count - 1, late.Events.Count(e => e == "BeforeBatch"));
        Assert.True(learner.Remove(late));
        Assert.False(learner.Remove(late));
    }

    private sealed class AddOnFirstBatch(Callback late) : Callback
    {
        public override void BeforeBatch(Learner learner)
        {
            if (learner.Step == 0) learner.Add(late);
        }
    }
}

