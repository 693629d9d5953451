using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>
/// What a steady-state training step allocates on the managed heap. Runs alone (no other test may change the engine's
/// thread count meanwhile).
/// </summary>
[Collection(nameof(WorkerTeamTests))]
public class StepAllocationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_pooled_training_step_allocates_only_small_bookkeeping(int threads)
    {
        var g = new Generator(1);
        var net = new Sequential(
            new Conv2d(1, 16, 3, padding: 1, bias: false, generator: g), new BatchNorm2d(16), new ReLU(),
            new Conv2d(16, 32, 3, stride: 2, padding: 1, bias: false, generator: g), new BatchNorm2d(32), new ReLU(),
            new Conv2d(32, 32, 3, padding: 1, bias: false, generator: g), new BatchNorm2d(32), new ReLU(),
            new AdaptiveAvgPool2d(1), new Flatten(), new Linear(32, 10, generator: g));
        var optimizer = new Sgd(net.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4);
        var x = Tensor.Normal([32, 1, 28, 28], 0, 1, new Generator(2));
        var y = Enumerable.Range(0, 32).Select(i => i % 10).ToArray();
        void Step()
        {
            using var scope = TensorScope.Begin();
            var loss = Functional.CrossEntropy(net.Forward(x), y);
            optimizer.ZeroGrad(setToNone: false);
            loss.Backward();
            optimizer.Step();
        }

        int saved = EngineSettings.Threads;
        EngineSettings.Threads = threads;
        try
        {
            for (int i = 0; i < 3; i++) Step();                                   // pool, plans and optimizer state settle
            // Counted process-wide, so what the worker threads allocate is in it too.
            long before = GC.GetTotalAllocatedBytes(precise: true);
            const int steps = 5;
            for (int i = 0; i < steps; i++) Step();
            long perStep = (GC.GetTotalAllocatedBytes(precise: true) - before) / steps;
            // Tensor objects, autograd nodes and their closures remain (a few hundred bytes per op, about 30 ops);
            // activations, gradients, packing buffers and the loss's work arrays must come from pools. One
            // 32×16×28×28 activation alone would be 1.6 MB.
            Assert.True(perStep < 8_000, $"a step allocated {perStep:N0} bytes");
        }
        finally
        {
            EngineSettings.Threads = saved;
        }
    }
}
