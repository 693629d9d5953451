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
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(1, false)]
    [InlineData(2, false)]
    public void A_pooled_training_step_allocates_only_its_scope_and_tensor_objects(int threads, bool reuseTensorObjects)
    {
        var g = new Generator(1);
        var net = new Sequential(
            new Conv2d(1, 16, 3, padding: 1, bias: false, generator: g), new BatchNorm2d(16), new ReLU(),
            new Conv2d(16, 32, 3, stride: 2, padding: 1, bias: false, generator: g), new BatchNorm2d(32), new ReLU(),
            new Conv2d(32, 32, 3, padding: 1, bias: false, generator: g), new BatchNorm2d(32), new ReLU(),
            new MaxPool2d(2), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(32, 10, generator: g));
        var optimizer = new Sgd(net.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4);
        var x = Tensor.Normal([32, 1, 28, 28], 0, 1, new Generator(2));
        var y = Enumerable.Range(0, 32).Select(i => i % 10).ToArray();
        void Step()
        {
            using var scope = TensorScope.Begin(reuseTensorObjects);
            var loss = Functional.CrossEntropy(net.Forward(x), y);
            optimizer.ZeroGrad(setToNone: false);
            loss.Backward();
            optimizer.Step();
        }

        int saved = EngineSettings.Threads;
        EngineSettings.Threads = threads;
        try
        {
            for (int i = 0; i < 3; i++) Step();                                   // pools, plans and optimizer state settle
            // Counted on this thread and on the worker's, which runs half of every parallel region.
            long before = TeamAllocations.Read();
            const int steps = 5;
            for (int i = 0; i < steps; i++) Step();
            long perStep = (TeamAllocations.Read() - before) / steps;
            // Memory, autograd nodes, shapes, parallel regions and work arrays all come from pools; what is left is
            // the scope object (tens of bytes) and, unless they are reused, the step's tensor objects (about 30, of
            // some 70 bytes each). One 32×16×28×28 activation alone would be 1.6 MB.
            int limit = reuseTensorObjects ? 256 : 3_000;
            Assert.True(perStep < limit, $"a step allocated {perStep:N0} bytes");
        }
        finally
        {
            EngineSettings.Threads = saved;
        }
    }
}
