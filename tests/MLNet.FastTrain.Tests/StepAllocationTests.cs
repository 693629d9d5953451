using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Learning;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>
/// What a training step allocates. The tensor pool is the process's, so a test that trims it or rents the same sizes
/// at the same time would show up here as allocations: these run when no other test does.
/// </summary>
[Collection(nameof(ProcessAllocationTests))]
public class StepAllocationTests
{
    private static Learner NewLearner() => LearnerTests.NewLearner();

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
        (float[] Weights, long MostBytes) Train(bool reuse)
        {
            var learner = NewLearner();
            ((Engines.ManagedEngine)learner.Engine).ReuseStepTensors = reuse;
            var probe = new AllocationProbe(dispatchOnly: false);
            learner.Add(probe.First).Add(probe.Last);
            learner.Fit(2);
            Assert.Null(learner.Engine.Output);                                       // not readable once the step is over
            return (learner.Model.Parameters().SelectMany(p => p.ToArray()).ToArray(), probe.MostBytes);
        }

        var (reused, reusedBytes) = Train(reuse: true);
        var (fresh, freshBytes) = Train(reuse: false);
        Assert.Equal(fresh, reused);                                                  // bit for bit
        // What is left on the training thread: the step's scope objects and the recorder's line for the batch. Without
        // reuse every tensor of the step is a new object (the tiny net's step makes a few dozen).
        Assert.True(reusedBytes < 1_024, $"a step allocated {reusedBytes:N0} bytes with its tensor objects reused");
        Assert.True(freshBytes > reusedBytes + 1_500, $"{freshBytes:N0} bytes a step without reuse against {reusedBytes:N0} with it");
    }

    /// <summary>
    /// Measures what the training thread allocates in every step after the third (the first ones fill the pool and
    /// compile the path) between two moments: from the first callback's BeforeBatch to the last's AfterBatch (the
    /// whole step), or from the last callback's AfterStep to the first's AfterBatch (one event's dispatch alone).
    /// </summary>
    private sealed class AllocationProbe(bool dispatchOnly)
    {
        private long _start;
        private bool DispatchOnly => dispatchOnly;
        public long MostBytes { get; private set; }
        public int Measured { get; private set; }
        public Callback First => new Marker(int.MinValue, this);
        public Callback Last => new Marker(int.MaxValue, this);

        private void Start(Learner learner) => _start = GC.GetAllocatedBytesForCurrentThread();

        private void Stop(Learner learner)
        {
            if (learner.Step < 3) return;
            MostBytes = Math.Max(MostBytes, GC.GetAllocatedBytesForCurrentThread() - _start);
            Measured++;
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
