using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Initializers;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Serialization;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

public class ModuleTests
{
    /// <summary>A two-layer block with a nested child, to exercise naming.</summary>
    private sealed class Block : Module
    {
        public Block(Generator g)
        {
            Conv = new Conv2d(2, 4, 3, padding: 1, bias: false, generator: g);
            Norm = new BatchNorm2d(4);
            Head = new Sequential(new Flatten(), new Linear(4 * 5 * 5, 3, generator: g));
            RegisterModule("conv", Conv);
            RegisterModule("bn", Norm);
            RegisterModule("head", Head);
        }

        public Conv2d Conv { get; }

        public BatchNorm2d Norm { get; }

        public Sequential Head { get; }

        public override Tensor Forward(Tensor input) => Head.Forward(Functional.Relu(Norm.Forward(Conv.Forward(input))));
    }

    [Fact]
    public void Parameters_and_buffers_have_dotted_names_in_registration_order()
    {
        var m = new Block(new Generator(1));
        Assert.Equal(new[] { "conv.weight", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias" }, m.NamedParameters().Select(kv => kv.Key));
        Assert.Equal(new[] { "bn.running_mean", "bn.running_var" }, m.NamedBuffers().Select(kv => kv.Key));
        Assert.Equal(new[] { "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "head.1.weight", "head.1.bias" }, m.StateDict().Keys);
        Assert.Equal(new[] { "", "conv", "bn", "head", "head.0", "head.1" }, m.NamedModules().Select(kv => kv.Key));
    }

    [Fact]
    public void Train_and_eval_reach_every_descendant()
    {
        var m = new Block(new Generator(1));
        m.Eval();
        Assert.All(m.NamedModules(), kv => Assert.False(kv.Value.Training));
        m.Train();
        Assert.All(m.NamedModules(), kv => Assert.True(kv.Value.Training));
    }

    [Fact]
    public void Frozen_parameters_get_no_gradient()
    {
        var m = new Block(new Generator(1));
        m.Conv.RequiresGrad(false);
        var x = Tensor.Normal([2, 2, 5, 5], generator: new Generator(2));
        Functional.CrossEntropy(m.Forward(x), new[] { 0, 2 }).Backward();
        Assert.Null(m.Conv.Weight.Grad);
        Assert.NotNull(m.Norm.Weight!.Grad);
        Assert.NotNull(m.Head.Parameters().First().Grad);
        m.ZeroGrad();
        Assert.All(m.Parameters(), p => Assert.Null(p.Grad));
    }

    [Fact]
    public void State_dict_round_trip_reproduces_outputs()
    {
        var a = new Block(new Generator(1));
        var b = new Block(new Generator(2));
        var x = Tensor.Normal([2, 2, 5, 5], generator: new Generator(3));
        a.Forward(x); // moves running statistics
        a.Eval(); b.Eval();
        Assert.NotEqual(a.Forward(x).ToArray(), b.Forward(x).ToArray());
        b.LoadStateDict(a.StateDict().Clone());
        Assert.Equal(a.Forward(x).ToArray(), b.Forward(x).ToArray());
    }

    [Fact]
    public void Loading_copies_into_existing_storage()
    {
        var a = new Linear(3, 2, generator: new Generator(1));
        var b = new Linear(3, 2, generator: new Generator(2));
        var weightObject = b.Weight;
        b.LoadStateDict(a.StateDict());
        Assert.Same(weightObject, b.Weight);
        Assert.Equal(a.Weight.ToArray(), b.Weight.ToArray());
        a.Weight.Fill(0);
        Assert.NotEqual(a.Weight.ToArray(), b.Weight.ToArray());
    }

    [Fact]
    public void Strict_loading_names_missing_unexpected_and_mis_shaped_entries()
    {
        var m = new Linear(3, 2);
        var state = new StateDict();
        state.Add("weight", Tensor.Zeros(2, 4));
        state.Add("extra", Tensor.Zeros(1));
        var before = m.Weight.ToArray();
        var e = Assert.Throws<StateDictMismatchException>(() => m.LoadStateDict(state));
        Assert.Equal(new[] { "bias" }, e.Missing);
        Assert.Equal(new[] { "extra" }, e.Unexpected);
        Assert.Single(e.MisShaped);
        Assert.Contains("weight: expected [2, 3], got [2, 4]", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, m.Weight.ToArray()); // nothing was copied
    }

    [Fact]
    public void Non_strict_loading_takes_what_fits_but_never_a_wrong_shape()
    {
        var m = new Linear(3, 2);
        var state = new StateDict();
        state.Add("bias", Tensor.FromArray(new float[] { 7, 8 }));
        state.Add("other", Tensor.Zeros(1));
        m.LoadStateDict(state, strict: false);
        Assert.Equal(new float[] { 7, 8 }, m.Bias!.ToArray());
        var bad = new StateDict();
        bad.Add("bias", Tensor.Zeros(3));
        Assert.Throws<StateDictMismatchException>(() => m.LoadStateDict(bad, strict: false));
    }

    [Fact]
    public void Sequential_replaces_a_child_for_a_new_head()
    {
        var net = new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 10));
        net[2] = new Linear(8, 3);
        Assert.Equal(new[] { 5, 3 }, net.Forward(Tensor.Zeros(5, 4)).ShapeArray());
        Assert.Equal(new[] { "0.weight", "0.bias", "2.weight", "2.bias" }, net.NamedParameters().Select(kv => kv.Key));
        Assert.Equal(new[] { 3, 8 }, net.StateDict()["2.weight"].ShapeArray());
        Assert.Throws<ArgumentException>(() => net.Append("0", new ReLU()));
    }

    [Fact]
    public void Invalid_member_names_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new Sequential(("a.b", new ReLU())));
        Assert.Throws<ArgumentException>(() => new Sequential(("", new ReLU())));
    }

    [Fact]
    public void Linear_and_conv_defaults_follow_torch_bounds()
    {
        var g = new Generator(5);
        var lin = new Linear(100, 50, generator: g);
        double bound = 1 / Math.Sqrt(100);
        Assert.All(lin.Weight.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.All(lin.Bias!.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(lin.Weight.ToArray().Max() > 0.9 * bound);
        var conv = new Conv2d(8, 16, 3, generator: g);
        double cb = 1 / Math.Sqrt(8 * 9);
        Assert.All(conv.Weight.ToArray(), v => Assert.InRange(v, -cb, cb));
        Assert.True(conv.Weight.ToArray().Min() < -0.9 * cb);
    }

    [Fact]
    public void Batch_norm_updates_running_statistics_only_in_training()
    {
        var bn = new BatchNorm2d(2);
        var x = Tensor.Normal([8, 2, 3, 3], 3.0, 2.0, new Generator(1));
        bn.Forward(x);
        Assert.All(bn.RunningMean.ToArray(), v => Assert.InRange(v, 0.2, 0.4)); // 0.9·0 + 0.1·≈3
        var after = bn.RunningMean.ToArray();
        bn.Eval();
        bn.Forward(x);
        Assert.Equal(after, bn.RunningMean.ToArray());
        bn.Train();
        bn.FreezeStatistics = true;
        bn.Forward(x);
        Assert.Equal(after, bn.RunningMean.ToArray());
    }

    [Fact]
    public void Dropout_is_identity_in_eval_and_scales_in_training()
    {
        var d = new Dropout(0.5, new Generator(3));
        var x = Tensor.Ones(1000);
        var y = d.Forward(x).ToArray();
        Assert.All(y, v => Assert.True(v == 0f || v == 2f));
        Assert.InRange(y.Count(v => v == 0f), 400, 600);
        d.Eval();
        Assert.Same(x, d.Forward(x));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(1.5));
    }

    [Fact]
    public void Pooling_and_flatten_modules_give_expected_shapes()
    {
        var x = Tensor.Zeros(2, 3, 9, 7);
        Assert.Equal(new[] { 2, 3, 4, 3 }, new MaxPool2d(2).Forward(x).ShapeArray());
        Assert.Equal(new[] { 2, 3, 5, 4 }, new AvgPool2d(3, 2, 1).Forward(x).ShapeArray());
        Assert.Equal(new[] { 2, 3, 1, 1 }, new AdaptiveAvgPool2d(1).Forward(x).ShapeArray());
        Assert.Equal(new[] { 2, 189 }, new Flatten().Forward(x).ShapeArray());
    }
}

public class InitTests
{
    [Fact]
    public void Fans_and_gains_follow_the_definitions()
    {
        Assert.Equal((8 * 9, 16 * 9), Init.Fans(Tensor.Zeros(16, 8, 3, 3)));
        Assert.Equal(Math.Sqrt(2), Init.Gain("relu"), 12);
        Assert.Equal(5.0 / 3, Init.Gain("tanh"), 12);
        Assert.Equal(Math.Sqrt(2 / (1 + 0.04)), Init.Gain("leaky_relu", 0.2), 12);
        Assert.Throws<ArgumentException>(() => Init.Gain("softsign"));
        Assert.Throws<ArgumentException>(() => Init.Fans(Tensor.Zeros(5)));
    }

    [Fact]
    public void Kaiming_normal_has_std_gain_over_root_fan()
    {
        var w = Init.KaimingNormal(Tensor.Zeros([256, 64, 3, 3], DType.Float64), nonlinearity: "relu", generator: new Generator(1));
        var v = w.ToDoubleArray();
        double std = Math.Sqrt(v.Select(a => a * a).Average());
        Assert.InRange(std, 0.98 * Math.Sqrt(2.0 / 576), 1.02 * Math.Sqrt(2.0 / 576));
        var wOut = Init.KaimingNormal(Tensor.Zeros([64, 256, 3, 3], DType.Float64), mode: FanMode.FanOut, nonlinearity: "relu", generator: new Generator(1));
        double stdOut = Math.Sqrt(wOut.ToDoubleArray().Select(a => a * a).Average());
        Assert.InRange(stdOut, 0.98 * Math.Sqrt(2.0 / 576), 1.02 * Math.Sqrt(2.0 / 576));
    }

    [Fact]
    public void Kaiming_and_xavier_uniform_respect_their_bounds()
    {
        var k = Init.KaimingUniform(Tensor.Zeros(50, 200), nonlinearity: "relu", generator: new Generator(2)).ToArray();
        double kb = Math.Sqrt(2) * Math.Sqrt(3.0 / 200);
        Assert.All(k, v => Assert.InRange(v, -kb, kb));
        Assert.True(k.Max() > 0.95 * kb);
        var x = Init.XavierUniform(Tensor.Zeros(50, 200), generator: new Generator(3)).ToArray();
        double xb = Math.Sqrt(6.0 / 250);
        Assert.All(x, v => Assert.InRange(v, -xb, xb));
        Assert.True(x.Min() < -0.95 * xb);
        var xn = Init.XavierNormal(Tensor.Zeros([400, 400], DType.Float64), generator: new Generator(4)).ToDoubleArray();
        Assert.InRange(Math.Sqrt(xn.Select(a => a * a).Average()), 0.98 * Math.Sqrt(2.0 / 800), 1.02 * Math.Sqrt(2.0 / 800));
        Assert.All(Init.Constant(Tensor.Zeros(3), 0.25).ToArray(), v => Assert.Equal(0.25f, v));
    }
}

public class SequentialEvaluationMemoryTests
{
    /// <summary>Doubles its input into a new tensor and remembers each output it made.</summary>
    private sealed class Probe : Module
    {
        public List<Tensor> Outputs { get; } = [];

        public override Tensor Forward(Tensor input)
        {
            var y = input * 2.0;
            Outputs.Add(y);
            return y;
        }
    }

    [Fact]
    public void An_evaluation_pass_in_a_scope_frees_each_intermediate_once_the_next_layer_has_read_it()
    {
        var g = new Generator(3);
        var probes = Enumerable.Range(0, 4).Select(_ => new Probe()).ToArray();
        var net = new Sequential(probes[0], new Linear(6, 6, generator: g), probes[1], new Flatten(), probes[2], new ReLU(), probes[3]);
        var x = Tensor.Normal([5, 6], generator: g);
        Tensor expected;
        using (GradRecorder.NoGrad()) expected = net.Forward(x);

        using (TensorScope.Begin())
        using (GradRecorder.NoGrad())
        {
            var y = net.Forward(x);
            Assert.Equal(expected.ToArray(), y.ToArray());
            // Every probe's output was read by the next layer and then given back, except the last, which is the
            // result; Flatten's view shares probe 1's memory, so probe 1's output went back only after probe 2 read it.
            Assert.All(probes.Take(3), p => Assert.True(p.Outputs[^1].IsReleased));
            Assert.False(probes[3].Outputs[^1].IsReleased);
            Assert.False(x.IsReleased);
        }
    }

    [Fact]
    public void With_gradients_on_the_scope_keeps_every_activation_for_backward()
    {
        var probes = Enumerable.Range(0, 2).Select(_ => new Probe()).ToArray();
        var net = new Sequential(probes[0], new ReLU(), probes[1]);
        var x = Tensor.Normal([3, 4], generator: new Generator(4));
        x.RequiresGrad = true;
        using var scope = TensorScope.Begin();
        Functional.Sum(net.Forward(x)).Backward();
        Assert.False(probes[0].Outputs[^1].IsReleased);
        Assert.NotNull(x.Grad);
    }
}
