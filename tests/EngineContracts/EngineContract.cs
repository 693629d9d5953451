using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Models;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>
/// The training layer's contract, written once and run for every engine (docs/design.md §9): each engine's test
/// project derives from this class and says how to move a learner onto its engine.
/// </summary>
public abstract class EngineContract : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("engine-contract-").FullName;

    /// <summary>The engine's name, as <see cref="Engines.TrainingEngine.Name"/> reports it.</summary>
    protected abstract string EngineName { get; }

    /// <summary>Moves a freshly built learner onto the engine under test.</summary>
    protected abstract Learner OnEngine(Learner learner);

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    private Learner NewLearner(Func<Module, Optimizer>? optimizer = null, Module? net = null)
    {
        Generator.Default.ManualSeed(7);
        var (train, valid) = TestData.Loaders();
        net ??= TestData.TinyNet(seed: 3);
        var learner = OnEngine(new Learner(net, train, valid, (optimizer ?? (m => new Sgd(m.Parameters(), 0.01, momentum: 0.9, weightDecay: 5e-4)))(net)));
        Assert.Equal(EngineName, learner.Engine.Name);
        return learner;
    }

    private static float[] Weights(Learner l) => l.Engine.ModelState().Values.SelectMany(t => t.ToArray()).ToArray();

    [Fact]
    public void One_cycle_training_learns_the_subset()
    {
        var learner = NewLearner(m => new AdamW(m.Parameters()));
        learner.FitOneCycle(2, [3e-3]);
        var accuracy = learner.LastValidation!.Metrics["accuracy"];
        Assert.True(accuracy > 0.7, $"validation accuracy {accuracy:P1} after two epochs on the {EngineName} engine");
        Assert.True(learner.Recorder.Batches[^1].SmoothLoss < learner.Recorder.Batches[0].SmoothLoss / 2);
    }

    [Fact]
    public void Lr_finder_ramps_exponentially_stops_at_divergence_and_restores_everything_exactly()
    {
        var learner = NewLearner();
        learner.Fit(1);                                   // momentum buffers exist now
        Generator.Default.ManualSeed(42);
        var weights = learner.Engine.ModelState();
        var optimizer = learner.Engine.OptimizerState();
        var random = Generator.Default.GetState();
        double lr = learner.Optimizer.Groups[0].LearningRate!.Value;

        var result = LrFinder.Run(learner, new LrFinder.Options { Iterations = 100 });

        var p = result.Points;
        for (int i = 1; i < p.Count; i++) Assert.Equal(Math.Pow(1e8, 1 / 99.0), p[i].LearningRate / p[i - 1].LearningRate, 9);
        Assert.True(result.StoppedEarly, "an LR of 10 should make this net diverge");
        Assert.True(p[^1].SmoothLoss > 4 * p.Min(q => q.SmoothLoss) || !double.IsFinite(p[^1].SmoothLoss));
        AssertSame(weights, learner.Engine.ModelState());
        AssertSame(optimizer, learner.Engine.OptimizerState());
        Assert.Equal(random, Generator.Default.GetState());
        Assert.Equal(lr, learner.Optimizer.Groups[0].LearningRate);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(18)]
    public void Resuming_from_a_checkpoint_gives_bit_identical_weights(int everyBatches)
    {
        var uninterrupted = NewLearner();
        uninterrupted.FitOneCycle(2, [0.05], extra: [new CheckpointCallback(_dir, everyBatches, keep: 10)]);
        var expected = Weights(uninterrupted);
        var first = Checkpoint.Load(Directory.GetFiles(_dir, "checkpoint-*.ftc").Order(StringComparer.Ordinal).First());
        var resumed = NewLearner();
        resumed.FitOneCycle(2, [0.05], resume: first);
        Assert.Equal(expected, Weights(resumed));
    }

    [Fact]
    public void Differential_learning_rates_reach_their_parameter_groups()
    {
        var net = ModelZoo.ResNetSmall(1, 10, new Generator(5));
        var fineTune = new DifferentialFineTune(net);
        var learner = NewLearner(_ => new AdamW(fineTune.CreateParamGroups(), weightDecay: 0), net);
        double[] rates = [1e-5, 1e-4, 1e-3];
        fineTune.SetLearningRates(learner.Optimizer, rates);
        var before = learner.Engine.ModelState();
        learner.Fit(1, [new StopAfterBatches(1)]);
        var after = learner.Engine.ModelState();
        // Adam's first step moves each weight by lr·g/(|g| + ε): the group's rate, wherever the gradient is not tiny.
        string[][] convs = [["conv1.weight", "layer1.conv1.weight"], ["layer2.conv1.weight", "layer3.conv2.weight"], ["fc.weight"]];
        for (int g = 0; g < 3; g++)
        {
            foreach (var name in convs[g])
            {
                var delta = before[name].ToArray().Zip(after[name].ToArray(), (a, b) => Math.Abs(b - a)).Order().ToArray();
                double median = delta[delta.Length / 2];
                Assert.InRange(median, 0.8 * rates[g], 1.01 * rates[g]);
            }
        }
    }

    [Fact]
    public void Frozen_groups_do_not_move_and_their_batch_norms_train()
    {
        var net = ModelZoo.ResNetSmall(1, 10, new Generator(5));
        var fineTune = new DifferentialFineTune(net);
        var learner = NewLearner(_ => new AdamW(fineTune.CreateParamGroups()), net);
        fineTune.Freeze();
        var before = learner.Engine.ModelState();
        learner.Fit(1, [new StopAfterBatches(3)]);
        var after = learner.Engine.ModelState();
        Assert.Equal(before["layer2.conv1.weight"].ToArray(), after["layer2.conv1.weight"].ToArray());
        Assert.Equal(before["conv1.weight"].ToArray(), after["conv1.weight"].ToArray());
        Assert.NotEqual(before["layer2.bn1.weight"].ToArray(), after["layer2.bn1.weight"].ToArray());   // train_bn
        Assert.NotEqual(before["fc.weight"].ToArray(), after["fc.weight"].ToArray());

        fineTune.Unfreeze();
        learner.Fit(1, [new StopAfterBatches(1)]);
        Assert.NotEqual(after["conv1.weight"].ToArray(), learner.Engine.ModelState()["conv1.weight"].ToArray());
    }

    [Fact]
    public void A_head_trained_on_precomputed_activations_matches_one_trained_through_the_frozen_body()
    {
        Learner Frozen(out DifferentialFineTune fineTune)
        {
            var net = ModelZoo.ResNetSmall(1, 10, new Generator(1));
            fineTune = new DifferentialFineTune(net) { FreezeBatchNormStatistics = true };
            fineTune.Freeze();
            return NewLearner(m => new Sgd(m.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4), net);
        }
        var through = Frozen(out _);
        through.ValidData = null;
        through.Fit(2);

        var cached = Frozen(out var split);
        var (body, head) = split.SplitBodyHead();
        var features = PrecomputedActivations.Compute(body, (Vision.Datasets.DataLoader)cached.TrainData);
        Generator.Default.ManualSeed(7);
        var headLearner = OnEngine(new Learner(head, features, null, new Sgd(head.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4)));
        headLearner.Fit(2);

        var expected = through.Engine.ModelState()["fc.weight"].ToArray();
        var actual = headLearner.Engine.ModelState()["fc.weight"].ToArray();
        Assert.NotEqual(ModelZoo.ResNetSmall(1, 10, new Generator(1)).StateDict()["fc.weight"].ToArray(), actual);
        double scale = expected.Max(v => Math.Abs(v));
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * scale, $"fc.weight[{i}]: {expected[i]} vs {actual[i]}");
        Assert.Equal(through.Engine.ModelState()["layer3.conv2.weight"].ToArray(), cached.Engine.ModelState()["layer3.conv2.weight"].ToArray());
    }

    [Fact]
    public void Precomputed_activations_come_from_the_engine_and_the_head_trained_on_them_goes_back_to_it()
    {
        var net = ModelZoo.ResNetSmall(1, 10, new Generator(1));
        var fineTune = new DifferentialFineTune(net);
        var learner = NewLearner(_ => new AdamW(fineTune.CreateParamGroups()), net);
        var initialHead = learner.Engine.ModelState()["fc.weight"].ToArray();
        var (body, _) = fineTune.SplitBodyHead();
        var loader = (Vision.Datasets.DataLoader)learner.TrainData;
        var onEngine = PrecomputedActivations.Compute(learner.Engine, body.Count, loader).Items.ToArray();
        var described = PrecomputedActivations.Compute(body, loader).Items.ToArray();
        double scale = described.Max(v => Math.Abs(v));
        Assert.Equal(described.Length, onEngine.Length);
        Assert.True(described.Zip(onEngine, (a, b) => Math.Abs(a - b)).Max() <= 1e-4 * scale);

        // At a rate of 1e-12 the unfrozen stage moves nothing, so the engine's head is what the precomputed stage left.
        var stages = FineTuneRecipe.Run(learner, fineTune, new FineTuneRecipe.Options
        {
            PrecomputedEpochs = 1, AugmentedHeadCycles = 0, Cycles = 1, HeadLearningRate = 1e-2, LearningRate = 1e-12,
        });
        Assert.Equal("precomputed head", stages[0].Name);
        var head = learner.Engine.ModelState()["fc.weight"].ToArray();
        double moved = head.Zip(initialHead, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(moved > 1e-3, $"the head trained on precomputed activations moved the engine's head by {moved:g3}");
    }

    [Fact]
    public void Sgdr_keeps_a_snapshot_per_cycle_and_the_last_is_the_final_weights()
    {
        var learner = NewLearner();
        var snapshots = learner.FitSgdr(2, [0.05], cycleLength: 1, cycleMult: 2, snapshots: true);
        Assert.Equal(2, snapshots.Count);
        Assert.Equal(3, learner.EpochsTrained);
        Assert.NotEqual(snapshots[0]["8.weight"].ToArray(), snapshots[1]["8.weight"].ToArray());
        Assert.Equal(learner.Engine.ModelState()["8.weight"].ToArray(), snapshots[1]["8.weight"].ToArray());
    }

    [Fact]
    public void Early_stopping_restores_the_best_epoch()
    {
        var learner = NewLearner(m => new Sgd(m.Parameters(), 0.01, momentum: 0.9));
        var stopping = new EarlyStopping("valid_loss", patience: 0, restoreBest: true);
        var history = new List<(double Loss, StateDict State)>();
        learner.Fit(5, [stopping, new AfterValidation(l => history.Add((l.LastValidation!.Loss, l.Engine.ModelState())))]);
        int best = history.Select((h, i) => (h.Loss, i)).MinBy(h => h.Loss).i;
        Assert.Equal(best, stopping.BestEpoch);
        AssertSame(history[best].State, learner.Engine.ModelState());
    }

    [Fact]
    public void Divergence_stops_training_with_advice_and_puts_back_the_epoch_start()
    {
        var learner = NewLearner(m => new Sgd(m.Parameters(), 1e4, momentum: 0.9));
        var start = learner.Engine.ModelState();
        learner.Fit(1, [new DivergenceGuard()]);
        Assert.Contains("diverged", learner.StopReason, StringComparison.Ordinal);
        AssertSame(start, learner.Engine.ModelState());
    }

    [Fact]
    public void The_trained_model_scores_the_same_on_the_managed_engine()
    {
        var learner = NewLearner(m => new AdamW(m.Parameters()));
        learner.FitOneCycle(1, [3e-3]);
        var batch = TestData.Loaders().Valid.Epoch(0).First();
        learner.Engine.Train(false);
        var engineLogits = learner.Engine.Logits(batch.Images).ToArray();
        var managed = learner.Model.Eval();                 // the description with the engine's weights
        using var noGrad = Engine.Autograd.GradRecorder.NoGrad();
        var managedLogits = managed.Forward(batch.Images).ToArray();
        for (int i = 0; i < engineLogits.Length; i++) Assert.Equal(managedLogits[i], engineLogits[i], 1e-3f);
    }

    private static void AssertSame(StateDict expected, StateDict actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, t) in expected) Assert.Equal(t.ToDoubleArray(), actual[name].ToDoubleArray());
    }

    private sealed class AfterValidation(Action<Learner> action) : Callback
    {
        public override int Order => -10; // before early stopping, which may end the fit
        public override void AfterValidate(Learner learner) => action(learner);
    }

    private sealed class StopAfterBatches(int batches) : Callback
    {
        public override void AfterBatch(Learner learner)
        {
            if (learner.BatchIndex + 1 >= batches) throw new CancelFitException($"stopped after {batches} batches");
        }
    }
}
