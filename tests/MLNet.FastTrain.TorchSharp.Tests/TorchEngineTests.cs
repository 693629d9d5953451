using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.TorchSharp;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>What is particular to the torch engine: it computes what the managed engine computes, and its bad input.</summary>
public sealed class TorchEngineTests
{
    private static Learner NewLearner(Func<Module, Optimizer> optimizer, ulong seed = 3)
    {
        Generator.Default.ManualSeed(7);
        var (train, valid) = TestData.Loaders();
        var net = TestData.TinyNet(seed);
        return new Learner(net, train, valid, optimizer(net));
    }

    private static Learner OnTorch(Learner learner) => learner.UseEngine((m, o) => new TorchEngine(m, o, "cpu", threads: 2));

    // TinyNet's second convolution has a bias right before a batch norm, which cancels it: its true gradient is 0 and
    // each engine's is rounding noise, which Adam's step (lr · g / |g|) turns into ±lr moves (measured: every other
    // tensor agrees to 2e-7 after 18 steps, that bias and the running mean it shifts differ by 10 %). Nothing
    // downstream sees either, so the comparison leaves them out for Adam.
    private static readonly string[] CancelledByBatchNorm = ["3.bias", "4.running_mean"];

    // The largest ‖a − b‖ / ‖a‖ over the tensors of two learners' state dicts (norms of at least 1e-2, so tensors
    // still near their zero initialisation do not dominate).
    private static double MaxRelativeDifference(Learner a, Learner b, params string[] except)
    {
        var sa = a.Engine.ModelState();
        var sb = b.Engine.ModelState();
        double worst = 0;
        foreach (var (name, t) in sa)
        {
            if (except.Contains(name)) continue;
            var x = t.ToArray();
            var y = sb[name].ToArray();
            double diff = Math.Sqrt(x.Zip(y, (p, q) => (double)(p - q) * (p - q)).Sum());
            double norm = Math.Sqrt(x.Sum(p => (double)p * p));
            worst = Math.Max(worst, diff / Math.Max(1e-2, norm));
        }
        return worst;
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adamw")]
    public void One_epoch_on_torch_ends_within_float_tolerance_of_the_managed_engine(string optimizer)
    {
        Func<Module, Optimizer> make = optimizer == "sgd"
            ? m => new Sgd(m.Parameters(), 0.02, momentum: 0.9, weightDecay: 5e-4)
            : m => new AdamW(m.Parameters(), 1e-3);
        var managed = NewLearner(make);
        var torch = OnTorch(NewLearner(make));
        managed.Fit(1);
        torch.Fit(1);
        // 18 steps of float32 arithmetic in two summation orders.
        Assert.InRange(MaxRelativeDifference(managed, torch, optimizer == "adamw" ? CancelledByBatchNorm : []), 0, 1e-5);
        Assert.Equal(managed.LastValidation!.Metrics["accuracy"], torch.LastValidation!.Metrics["accuracy"], 0.02);
    }

    [Fact]
    public void Bfloat16_computes_the_step_of_float32_to_bfloat16_accuracy_and_trains_as_well()
    {
        Func<Module, Optimizer> make = m => new Sgd(m.Parameters(), 0.02, momentum: 0.9, weightDecay: 5e-4);
        var full = OnTorch(NewLearner(make));
        var mixed = NewLearner(make).UseEngine((m, o) => new TorchEngine(m, o, "cpu", threads: 2, precision: TorchPrecision.BFloat16));
        Assert.Equal(full.Engine.ModelState().Keys, mixed.Engine.ModelState().Keys);    // torch's names, float32 masters

        // One step from the same weights: the loss and the weights to bfloat16's 2–3 significant digits.
        full.Fit(1, [new StopAfterOneBatch()]);
        mixed.Fit(1, [new StopAfterOneBatch()]);
        double loss = full.Recorder.Batches[0].Loss;
        Assert.InRange(mixed.Recorder.Batches[0].Loss, loss * 0.99, loss * 1.01);
        // (Measured: the weights agree to 4e-4–8e-4 of their norm; a batch norm's bias, one step from zero, to 5e-3.)
        Assert.InRange(MaxRelativeDifference(full, mixed, CancelledByBatchNorm), 1e-7, 1e-2);

        // A whole epoch diverges as any two trajectories do, and ends as accurate.
        full.Fit(1);
        mixed.Fit(1);
        Assert.True(mixed.LastValidation!.Metrics["accuracy"] > 0.6);
        Assert.Equal(full.LastValidation!.Metrics["accuracy"], mixed.LastValidation.Metrics["accuracy"], 0.05);
    }

    [Fact]
    public void Bfloat16_updates_smaller_than_a_bfloat16_step_still_accumulate_in_the_masters()
    {
        // At this rate each update is far below bfloat16's resolution of the weights (2^-8 relative): without float32
        // masters the weights would not move at all.
        var learner = NewLearner(m => new Sgd(m.Parameters(), 1e-6)).UseEngine((m, o) => new TorchEngine(m, o, "cpu", threads: 2, precision: TorchPrecision.BFloat16));
        var before = learner.Engine.ModelState()["0.weight"].ToArray();
        learner.Fit(1);
        var after = learner.Engine.ModelState()["0.weight"].ToArray();
        int moved = before.Zip(after, (a, b) => a != b).Count(m => m);
        Assert.True(moved > before.Length / 2, $"{moved} of {before.Length} weights moved");
        double largest = before.Zip(after, (a, b) => Math.Abs((double)a - b) / Math.Max(Math.Abs(a), 1e-3)).Max();
        Assert.True(largest < 1.0 / 256, $"a weight moved by {largest:g3} of itself");
    }

    [Fact]
    public void The_batch_size_finder_measures_libtorch_steps_and_leaves_the_weights_as_they_were()
    {
        var net = Vision.Models.ModelZoo.ResNetSmall(1, 10, new Generator(2));
        var engine = new TorchEngine(net, new Sgd(net.Parameters(), 0.01, momentum: 0.9), "cpu", threads: 2);
        long small = engine.ProbeStepBytes(16, (1, 28, 28), 10, training: true);
        long large = engine.ProbeStepBytes(256, (1, 28, 28), 10, training: true);
        long evaluation = engine.ProbeStepBytes(256, (1, 28, 28), 10, training: false);
        // The activations kept for backward grow with the batch: 240 more images hold megabytes more.
        Assert.True(large > small + (8L << 20), $"batch 16: {small} bytes, batch 256: {large} bytes");
        Assert.True(evaluation < large, $"evaluation {evaluation} bytes against training {large}");

        var before = engine.ModelState();
        var advice = Tuning.BatchSizeFinder.Find(engine, (1, 28, 28), 10, new Tuning.BatchSizeFinder.Options
        {
            MemoryBudgetBytes = Environment.WorkingSet + (512L << 20), BaselineBytes = Environment.WorkingSet, ValidationBatchSize = 256,
        });
        Assert.InRange(advice.BatchSize, 16, 1024);
        Assert.True(advice.BytesPerSample > 0);
        var after = engine.ModelState();
        foreach (var (name, t) in before) Assert.Equal(t.ToArray(), after[name].ToArray());   // batch-norm statistics put back
    }

    [Fact]
    public void Optimizer_state_moves_between_engines_mid_training()
    {
        Func<Module, Optimizer> make = m => new AdamW(m.Parameters(), 1e-3);
        var stay = NewLearner(make);
        var move = NewLearner(make);
        stay.Fit(1);
        move.Fit(1);
        OnTorch(move);
        Assert.Equal(stay.Engine.OptimizerState().Keys.Order(StringComparer.Ordinal), move.Engine.OptimizerState().Keys.Order(StringComparer.Ordinal));
        stay.Fit(1);
        move.Fit(1);
        Assert.InRange(MaxRelativeDifference(stay, move, CancelledByBatchNorm), 0, 1e-5);
        var onTorch = move.Engine.ModelState();
        move.UseEngine((m, o) => new Engines.ManagedEngine(m, o));          // and back, weights bit for bit
        Assert.Equal("managed", move.Engine.Name);
        foreach (var (name, t) in onTorch) Assert.Equal(t.ToArray(), move.Engine.ModelState()[name].ToArray());
    }

    [Theory]
    [InlineData("simple", 1, 28)]
    [InlineData("resnet", 1, 28)]
    [InlineData("resnet-wide", 3, 32)]
    [InlineData("resnet9", 1, 28)]
    [InlineData("resnet18", 3, 64)]
    [InlineData("resnet18-imagenet", 3, 64)]
    public void Every_zoo_network_builds_on_torch_and_computes_what_the_managed_one_does(string architecture, int channels, int side)
    {
        var net = TrainedModel.CreateNetwork(architecture, channels, 10, new Generator(11));
        var engine = new TorchEngine(net, new Sgd(net.Parameters(), 0.1), "cpu", threads: 2);
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * channels * side * side).Select(i => MathF.Sin(i * 0.37f)).ToArray(), 2, channels, side, side);
        net.Eval();
        engine.Train(false);
        using var noGrad = Engine.Autograd.GradRecorder.NoGrad();
        var expected = net.Forward(x).ToArray();
        var actual = engine.Logits(x).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(v => Math.Abs(v));
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * scale + 1e-5, $"logit {i}: {expected[i]} vs {actual[i]}");
        Assert.Equal(net.StateDict().Keys, engine.ModelState().Keys);
    }

    [Fact]
    public void Running_out_of_device_memory_gives_the_batch_and_the_way_out_and_keeps_the_weights()
    {
        // A pooling to 100,000 × 100,000 asks libtorch's allocator for 40 GB per image at once, which it refuses.
        var net = new Sequential(("conv", new Conv2d(1, 1, 1)), ("pool", new AdaptiveAvgPool2d(100_000)), ("flatten", new Flatten()));
        var engine = new TorchEngine(net, new Sgd(net.Parameters(), 0.1), "cpu", threads: 2);
        var before = engine.ModelState()["conv.weight"].ToArray();
        var batch = new Vision.Datasets.Batch(Tensor.Zeros(3, 1, 4, 4), [0, 1, 2]);
        using (engine.BeginStep())
        {
            var e = Assert.Throws<DeviceOutOfMemoryException>(() => engine.Forward(batch));
            Assert.Equal(3, e.BatchSize);
            Assert.Equal("cpu", e.Device);
            Assert.Contains("batch 3", e.Message, StringComparison.Ordinal);
            Assert.Contains("--batch auto", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(before, engine.ModelState()["conv.weight"].ToArray());
        engine.Train(false);
        Assert.Throws<DeviceOutOfMemoryException>(() => engine.Logits(Tensor.Zeros(1, 1, 4, 4)));
    }

    [Fact]
    public void A_layer_without_a_torch_counterpart_is_named()
    {
        var net = new Sequential(("features", new Sequential(("odd", new Doubler()))), ("fc", new Linear(4, 2)));
        var e = Assert.Throws<TorchEngineException>(() => new TorchEngine(net, new Sgd(net.Parameters(), 0.1)));
        Assert.Contains("'features.odd' (Doubler)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cuda_where_there_is_none_names_the_package_and_bad_devices_are_argument_errors()
    {
        if (global::TorchSharp.torch.cuda.is_available()) return; // on a GPU machine the CUDA tests below cover this
        var e = Assert.Throws<TorchEngineException>(() => TorchEngine.ResolveDevice("cuda:0"));
        Assert.Contains("libtorch-cuda-12.8-linux-x64", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => TorchEngine.ResolveDevice("tpu"));
        Assert.Throws<ArgumentException>(() => TorchEngine.ResolveDevice("cuda:first"));
        Assert.Equal("cpu", TorchEngine.ResolveDevice(" CPU ").type.ToString().ToLowerInvariant());
    }

    [CudaFact]
    public void On_a_gpu_the_engine_trains_and_an_index_past_the_last_device_is_refused()
    {
        int count = global::TorchSharp.torch.cuda.device_count();
        var e = Assert.Throws<TorchEngineException>(() => TorchEngine.ResolveDevice($"cuda:{count}"));
        Assert.Contains("out of range", e.Message, StringComparison.Ordinal);
        var learner = NewLearner(m => new AdamW(m.Parameters())).UseEngine((m, o) => new TorchEngine(m, o, "cuda"));
        Assert.Equal("cuda:0", learner.Engine.Device);
        learner.FitOneCycle(1, [3e-3]);
        Assert.True(learner.LastValidation!.Metrics["accuracy"] > 0.6);
    }

    private sealed class Doubler : Module
    {
        public override Tensor Forward(Tensor input) => Functional.MulScalar(input, 2);
    }

    private sealed class StopAfterOneBatch : Callback
    {
        public override void AfterBatch(Learner learner) => throw new CancelFitException("stopped after one batch");
    }
}

/// <summary>A fact that runs only where libtorch sees a CUDA GPU, and says why it skipped elsewhere.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        TorchRuntime.EnsureLoaded();
        if (!global::TorchSharp.torch.cuda.is_available()) Skip = "no CUDA GPU here (libtorch's CPU build): runs where the application references a libtorch-cuda package and a GPU is present";
    }
}
