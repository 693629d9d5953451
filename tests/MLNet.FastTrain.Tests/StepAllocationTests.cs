using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Learning;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>
/// What a training step allocates. The tensor pool is the process's: a test that trims it or rents the same sizes at
/// the same time, or the arrays earlier tests left in its buckets (a bucket's stack that grows in a measured step is
/// an allocation of that step), would show up here. These run when no other test does, from an empty pool.
/// </summary>
[Collection(nameof(ProcessAllocationTests))]
public class StepAllocationTests
{
    private static Learner NewLearner()
    {
        Engine.TensorScope.TrimPool();
        return LearnerTests.NewLearner();
    }

    [Fact]
    public void Dispatching_an_event_allocates_nothing()
    {
        // Between the last callback's AfterStep and the first callback's AfterBatch the learner does nothing but
        // dispatch the event: a long run's memory must not grow by a copy of the callback list or a delegate per event.
        var learner = NewLearner();
        var probe = new AllocationProbe(dispatchOnly: true);
        learner.Add(probe.First).Add(probe.Last);
        for (int i = 0; i < 8; i++) learner.Add(new Recorder());                   // a longer list to copy, if it were copied
        learner.Fit(2);
        Assert.True(probe.Measured > 10, $"{probe.Measured} steps measured");
        Assert.Equal(0, probe.MostBytes);
    }

    [Fact]
    public void Steps_that_reuse_their_tensor_objects_train_the_same_weights_and_allocate_almost_nothing()
    {
        (float[] Weights, AllocationProbe Probe) Train(bool reuse)
        {
            var learner = NewLearner();
            ((Engines.ManagedEngine)learner.Engine).ReuseStepTensors = reuse;
            var probe = new AllocationProbe(dispatchOnly: false);
            learner.Add(probe.First).Add(probe.Last);
            learner.Fit(2);
            Assert.Null(learner.Engine.Output);                                       // not readable once the step is over
            return (learner.Model.Parameters().SelectMany(p => p.ToArray()).ToArray(), probe);
        }

        var (reused, withReuse) = Train(reuse: true);
        var (fresh, withoutReuse) = Train(reuse: false);
        Assert.Equal(fresh, reused);                                                  // bit for bit
        // What is left on the training thread: the step's scope objects and the recorder's line for the batch. Without
        // reuse every tensor of the step is a new object (the tiny net's step makes a few dozen). A step now and then
        // may take a kernel's scratch array anew from the shared ArrayPool (its caches are per thread and per core, and
        // a busy machine moves the thread between cores: a CI run saw one step of 32 KB); the steady step is the measure.
        long typical = withReuse.TypicalBytes, most = withReuse.MostBytes;
        Assert.True(typical < 1_024, $"a step typically allocated {typical:N0} bytes with its tensor objects reused");
        Assert.True(withReuse.StepsAbove(1_024) <= withReuse.Measured / 5, $"{withReuse.StepsAbove(1_024)} of {withReuse.Measured} steps allocated 1 KB or more (the most {most:N0} bytes)");
        Assert.True(withoutReuse.TypicalBytes > typical + 1_500, $"{withoutReuse.TypicalBytes:N0} bytes a step without reuse against {typical:N0} with it");
    }

    /// <summary>
    /// Measures what the training thread allocates in every step after the third (the first ones fill the pool and
    /// compile the path) between two moments: from the first callback's BeforeBatch to the last's AfterBatch (the
    /// whole step), or from the last callback's AfterStep to the first's AfterBatch (one event's dispatch alone).
    /// </summary>
    private sealed class AllocationProbe(bool dispatchOnly)
    {
        private readonly List<long> _steps = [];
        private long _start;
        private bool DispatchOnly => dispatchOnly;
        public long MostBytes => _steps.Count == 0 ? 0 : _steps.Max();
        public long TypicalBytes => _steps.Order().ElementAt(_steps.Count / 2);
        public int StepsAbove(long bytes) => _steps.Count(b => b >= bytes);
        public int Measured => _steps.Count;
        public Callback First => new Marker(int.MinValue, this);
        public Callback Last => new Marker(int.MaxValue, this);

        private void Start(Learner learner) => _start = GC.GetAllocatedBytesForCurrentThread();

        private void Stop(Learner learner)
        {
            if (learner.Step < 3) return;
            _steps.Add(GC.GetAllocatedBytesForCurrentThread() - _start);
        }

        private sealed class Marker(int order, AllocationProbe probe) : Callback
        {
            private bool IsFirst => order == int.MinValue;
            public override int Order => order;
            public override void BeforeBatch(Learner learner)
            {
                if (IsFirst && !probe.DispatchOnly) probe.Start(learner);
            }
            public override void AfterStep(Learner learner)
            {
                if (!IsFirst && probe.DispatchOnly) probe.Start(learner);
            }
            public override void AfterBatch(Learner learner)
            {
                if (IsFirst == probe.DispatchOnly) probe.Stop(learner);
            }
        }
    }
}
