using MLNet.FastTrain.Engine.Kernels;
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
        var step = Steps(reuseTensorObjects);
        void Step() => step();

        int saved = EngineSettings.Threads;
        EngineSettings.Threads = threads;
        try
        {
            for (int i = 0; i < 3; i++) Step();                                   // pools, plans and optimizer state settle
            // Counted on this thread and on the worker's, which runs half of every parallel region, over windows of
            // five steps; the least of three windows is the steady state. A one-time event shows in one window only
            // (a full suite beside other work once measured 54,857 bytes a step; the likely cause, not confirmed, is
            // the runtime recompiling a method at its optimising tier late on a loaded machine), while a path that
            // allocates on every step shows in all of them.
            long perStep = long.MaxValue;
            for (int window = 0; window < 3 && perStep >= (reuseTensorObjects ? 256 : 3_000); window++)
            {
                long before = TeamAllocations.Read();
                const int steps = 5;
                for (int i = 0; i < steps; i++) Step();
                perStep = Math.Min(perStep, (TeamAllocations.Read() - before) / steps);
            }
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

    /// <summary>
    /// A step whose regions find the team running another thread's region (a data loader's, or another test's)
    /// runs them on its own thread and still allocates nothing but its scope and tensor objects; its result is the
    /// one the team computes. The team is held deterministically: a region on another thread waits inside its part
    /// until the step is done.
    /// </summary>
    [Fact]
    public void A_step_that_finds_the_team_busy_runs_its_regions_inline_allocation_free_and_computes_the_same()
    {
        int saved = EngineSettings.Threads;
        EngineSettings.Threads = 2;
        try
        {
            var free = Steps(reuseTensorObjects: false, out var freeLosses);
            for (int i = 0; i < 8; i++) free();

            var busy = Steps(reuseTensorObjects: false, out var busyLosses);
            using var holding = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            var holder = new Thread(() => WorkerTeam.Run(2, (holding, release), static (s, part) =>
            {
                if (part != 0) return;
                s.holding.Set();
                s.release.Wait();
            }));
            holder.Start();
            holding.Wait();
            long perStep;
            try
            {
                for (int i = 0; i < 3; i++) busy();
                // Every region now runs on this thread, so this thread's count is the whole step's (least of three
                // windows, as above).
                perStep = long.MaxValue;
                for (int window = 0; window < 3 && perStep >= 3_000; window++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    for (int i = 0; i < 5; i++) busy();
                    perStep = Math.Min(perStep, (GC.GetAllocatedBytesForCurrentThread() - before) / 5);
                }
            }
            finally
            {
                release.Set();
                holder.Join();
            }
            Assert.True(perStep < 3_000, $"a step on a busy team allocated {perStep:N0} bytes");
            Assert.Equal(freeLosses, busyLosses.Take(freeLosses.Count));   // the first eight steps of each
        }
        finally
        {
            EngineSettings.Threads = saved;
        }
    }

    [Fact]
    public void A_region_opened_inside_a_part_runs_its_parts_on_that_parts_thread()
    {
        var outer = new int[2];
        var inner = new int[2][];
        WorkerTeam.Run(2, part =>
        {
            outer[part] = Environment.CurrentManagedThreadId;
            var seen = new int[3];
            WorkerTeam.Run(3, p => seen[p] = Environment.CurrentManagedThreadId);
            inner[part] = seen;
        });
        for (int part = 0; part < 2; part++) Assert.All(inner[part], id => Assert.Equal(outer[part], id));
    }

    private static Action Steps(bool reuseTensorObjects) => Steps(reuseTensorObjects, out _);

    /// <summary>A small conv net's SGD step on a fixed batch; <paramref name="losses"/> collects each step's loss.</summary>
    private static Action Steps(bool reuseTensorObjects, out List<double> losses)
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
        var recorded = new List<double>(16);
        losses = recorded;
        return () =>
        {
            using var scope = TensorScope.Begin(reuseTensorObjects);
            var loss = Functional.CrossEntropy(net.Forward(x), y);
            optimizer.ZeroGrad(setToNone: false);
            loss.Backward();
            optimizer.Step();
            if (recorded.Count < recorded.Capacity) recorded.Add(loss.Item());
        };
    }
}
