using MLNet.FastTrain.Engine.Schedules;
using MLNet.FastTrain.TestUtilities;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

public class ScheduleTests
{
    public static TheoryData<string> SgdrCases => new(TorchReference.CaseNames.Where(n => n.StartsWith("schedule_sgdr", StringComparison.Ordinal)));

    [Theory]
    [MemberData(nameof(SgdrCases))]
    public void Sgdr_equals_torch_cosine_annealing_warm_restarts_stepped_per_batch(string name)
    {
        var c = TorchReference.Case(name);
        var s = new SgdrSchedule(c.GetProperty("max_lr").GetDouble(), c.GetProperty("cycles").GetInt32(), c.GetProperty("steps_per_epoch").GetInt32(),
            c.GetProperty("cycle_len").GetInt32(), c.GetProperty("cycle_mult").GetInt32(), c.GetProperty("min_lr").GetDouble());
        var expected = c.GetProperty("lr").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var actual = s.ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-12 + 1e-9 * expected[i], $"step {i}: {actual[i]:R} vs torch {expected[i]:R}");
    }

    [Fact]
    public void Sgdr_cycle_lengths_grow_by_cycle_mult()
    {
        // cycleLength 1, cycleMult 2, 3 cycles, 10 steps per epoch: cycles of 10, 20, 40 steps; 7 epochs.
        var s = new SgdrSchedule(0.1, cycles: 3, stepsPerEpoch: 10, cycleLength: 1, cycleMult: 2);
        Assert.Equal(70, s.Steps);
        Assert.Equal(7, s.Epochs);
        Assert.Equal(new[] { 10, 30, 70 }, s.CycleEnds());
        Assert.Equal(0.1, s.At(0), 15);
        Assert.Equal(0.1, s.At(10), 15);     // restart
        Assert.Equal(0.05, s.At(20), 12);    // half-way through the 20-step cycle: cos(π/2) = 0
        Assert.Equal(0.1, s.At(30), 15);
        Assert.True(s.At(29) < 0.001);
    }

    [Fact]
    public void Sgdr_warmup_and_peak_decay()
    {
        var s = new SgdrSchedule(0.1, cycles: 2, stepsPerEpoch: 10, minLr: 0.001, warmupSteps: 4, peakDecay: 0.5);
        Assert.Equal(0.001 + 0.25 * 0.099, s.At(0), 12);
        Assert.Equal(0.1 * (1 + Math.Cos(Math.PI * 3 / 10)) / 2 * (1 - 0.01) + 0.001, s.At(3), 12);
        Assert.Equal(0.05, s.At(10), 12);    // second cycle peaks at half
        Assert.Throws<ArgumentOutOfRangeException>(() => new SgdrSchedule(0.1, 1, 10, peakDecay: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SgdrSchedule(0.1, 1, 10, minLr: 0.2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SgdrSchedule(0.1, 0, 10));
    }

    [Fact]
    public void One_cycle_follows_fastai_by_hand()
    {
        // 100 steps, max 1, div 25, divFinal 1e5, pctStart 0.25.
        var s = new OneCycleSchedule(1.0, 100);
        Assert.Equal(1.0 / 25, s.At(0), 12);
        Assert.Equal(Schedule.Cos(0.04, 1, 10 / 25.0), s.At(10), 12);
        Assert.Equal(1.0, s.At(25), 12);                                       // the peak, at pct_start
        Assert.Equal(Schedule.Cos(1, 1e-5, (62 / 100.0 - 0.25) / 0.75), s.At(62), 12);
        Assert.True(s.At(99) < 1e-3);
        Assert.Equal(0.95, s.Momentum.At(0), 12);
        Assert.Equal(0.85, s.Momentum.At(25), 12);
        Assert.True(s.Momentum.At(99) > 0.949);
        // Rising then falling.
        var lr = s.ToArray();
        for (int i = 1; i <= 25; i++) Assert.True(lr[i] > lr[i - 1]);
        for (int i = 26; i < 100; i++) Assert.True(lr[i] < lr[i - 1]);
    }

    [Fact]
    public void Flat_cos_step_decay_concat_and_bounds()
    {
        var f = new FlatCosSchedule(0.1, 100);
        Assert.Equal(0.1, f.At(74), 15);
        Assert.True(f.At(99) < 0.001);
        var d = new StepDecaySchedule(1.0, 30, stepSize: 10, gamma: 0.5);
        Assert.Equal(new[] { 1.0, 1.0, 0.5, 0.25 }, new[] { d.At(0), d.At(9), d.At(10), d.At(29) });
        var c = Schedule.Concat(Schedule.Constant(1, 3), Schedule.Constant(2, 2));
        Assert.Equal(new[] { 1.0, 1, 1, 2, 2 }, c.ToArray());
        Assert.Equal(2, c.At(100));                                             // holds the last value
        Assert.Throws<ArgumentOutOfRangeException>(() => c.At(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Schedule.Constant(1, 0));
        Assert.Equal(Math.Sqrt(1e-7 * 10), Schedule.Exponential(1e-7, 10, 0.5), 12);
    }
}
