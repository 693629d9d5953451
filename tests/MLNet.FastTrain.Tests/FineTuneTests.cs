using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Models;
using Xunit;
using F = MLNet.FastTrain.Engine.Functional;

namespace MLNet.FastTrain.Tests;

public class FineTuneTests
{
    [Fact]
    public void Zoo_nets_split_into_early_late_and_head()
    {
        var groups = LayerGroups.Default(ModelZoo.ResNetSmall());
        Assert.Equal(["body.early", "body.late", "head"], groups.Select(g => g.Name));
        Assert.Equal(["layer2", "layer3"], groups[1].Children);
        Assert.Equal(3, LayerGroups.Default(ModelZoo.Simple()).Count);
        Assert.Equal(groups.Select(g => g.Children), LayerGroups.Default(ModelZoo.ResNetWide()).Select(g => g.Children));
        Assert.Equal(groups.Select(g => g.Children), LayerGroups.Default(ModelZoo.ResNet9()).Select(g => g.Children));
        var custom = new Sequential(new Linear(4, 4), new ReLU(), new Linear(4, 2));
        Assert.Throws<ArgumentException>(() => LayerGroups.Default(custom));
        Assert.Contains("2", Assert.Throws<ArgumentException>(() => LayerGroups.ByChildren(custom, ["0"])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LayerGroups.ByChildren(custom, ["0", "9"], ["2"]));
        Assert.Throws<ArgumentException>(() => LayerGroups.ByChildren(custom, ["0"], ["0", "2"]));
        Assert.Equal("head", LayerGroups.ByChildren(custom, ["0", "1"], ["2"])[1].Name);
    }

    [Fact]
    public void Norm_and_bias_parameters_get_no_weight_decay()
    {
        var ft = new DifferentialFineTune(ModelZoo.ResNetSmall());
        var groups = ft.CreateParamGroups();
        Assert.Equal(6, groups.Count);
        var opt = new Sgd(groups, 0.1, momentum: 0.9, weightDecay: 5e-4);
        Assert.Equal(5e-4, opt.Groups[0].WeightDecay);
        Assert.Equal(0, opt.Groups[1].WeightDecay);
        Assert.All(groups[1].Parameters, p => Assert.Equal(1, p.Rank));   // BN weights/biases are vectors
        Assert.All(groups[0].Parameters, p => Assert.Equal(4, p.Rank));   // conv weights
        Assert.Equal(ModelZoo.ResNetSmall().Parameters().Count(), groups.Sum(g => g.Parameters.Count));
    }

    [Fact]
    public void Learning_rate_spreads_follow_fastai()
    {
        var ft = new DifferentialFineTune(ModelZoo.ResNetSmall());
        Assert.Equal([0.001, 0.001, 0.01], ft.Spread(0.01));
        var range = ft.Spread(1e-4, 1e-2);
        Assert.Equal(1e-4, range[0], 15);
        Assert.Equal(1e-3, range[1], 15);
        Assert.Equal(1e-2, range[2], 15);
        Assert.Equal([1e-4, 1e-4, 1e-3, 1e-3, 1e-2, 1e-2], ft.PerParamGroup(range));
        Assert.Throws<ArgumentException>(() => ft.PerParamGroup([1.0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ft.Spread(1e-2, 1e-4));
    }

    [Fact]
    public void Freeze_leaves_only_the_head_and_batch_norm_trainable()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var ft = new DifferentialFineTune(model);
        var opt = new Sgd(ft.CreateParamGroups(), 0.1, momentum: 0.9);
        ft.Freeze(opt);
        var x = Tensor.Normal([4, 1, 12, 12], generator: new Generator(2));
        var bn = (BatchNorm2d)model.NamedModules().First(kv => kv.Key == "bn1").Value;
        var stats = bn.RunningMean.ToArray();
        F.CrossEntropy(model.Forward(x), [0, 1, 2, 3]).Backward();
        var named = model.NamedParameters().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Null(named["conv1.weight"].Grad);
        Assert.Null(named["layer3.conv2.weight"].Grad);
        Assert.NotNull(named["fc.weight"].Grad);
        Assert.NotNull(named["bn1.weight"].Grad);                         // fastai's train_bn
        Assert.NotEqual(stats, bn.RunningMean.ToArray());
        Assert.Contains("head", ft.Describe(opt), StringComparison.Ordinal);
        Assert.Equal(2, ft.FrozenGroups);
    }

    [Fact]
    public void Frozen_batch_norm_statistics_stay_put_when_asked()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var ft = new DifferentialFineTune(model) { FreezeBatchNormStatistics = true };
        ft.Freeze();
        var bn = (BatchNorm2d)model.NamedModules().First(kv => kv.Key == "layer1.bn1").Value;
        var stats = bn.RunningVar.ToArray();
        F.CrossEntropy(model.Forward(Tensor.Normal([4, 1, 12, 12], generator: new Generator(2))), [0, 1, 2, 3]).Backward();
        Assert.Equal(stats, bn.RunningVar.ToArray());
        Assert.Null(bn.Weight!.Grad);
        ft.Unfreeze();
        Assert.False(bn.FreezeStatistics);
        Assert.True(model.Parameters().All(p => p.RequiresGrad));
    }

    [Fact]
    public void Unfreezing_starts_newly_trainable_groups_with_clean_optimizer_state()
    {
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var ft = new DifferentialFineTune(model);
        var opt = new Sgd(ft.CreateParamGroups(), 0.01, momentum: 0.9);
        var x = Tensor.Normal([4, 1, 12, 12], generator: new Generator(2));
        // Train everything one step so every group has momentum, then freeze, then unfreeze.
        F.CrossEntropy(model.Forward(x), [0, 1, 2, 3]).Backward();
        opt.Step();
        ft.Freeze(opt);
        ft.Unfreeze(opt);
        var state = opt.StateDict().Keys.Where(k => k.StartsWith("state.", StringComparison.Ordinal)).ToList();
        Assert.DoesNotContain(state, k => k.StartsWith("state.0.", StringComparison.Ordinal));   // body.early cleared
        Assert.Contains(state, k => k.StartsWith("state.4.", StringComparison.Ordinal));         // the head kept its momentum
    }

    [Fact]
    public void Discriminative_rates_reach_each_group_during_one_cycle()
    {
        var (train, valid) = TestData.Loaders();
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var ft = new DifferentialFineTune(model);
        var learner = new Learner(model, train, valid, new AdamW(ft.CreateParamGroups()));
        learner.FitOneCycle(1, ft.PerParamGroup(ft.Spread(1e-4, 1e-2)));
        var peak = Enumerable.Range(0, 6).Select(g => learner.Recorder.Batches.Max(b => b.LearningRates[g])).ToArray();
        // Each group follows the same one-cycle shape scaled to its own peak (18 steps do not land exactly on it).
        Assert.Equal(10, peak[2] / peak[0], 9);
        Assert.Equal(10, peak[5] / peak[2], 9);
        Assert.Equal(peak[4], peak[5]);
        Assert.InRange(peak[5], 0.99e-2, 1e-2);
    }

    [Fact]
    public void A_new_head_keeps_the_body()
    {
        var model = ModelZoo.ResNetSmall(numClasses: 10, generator: new Generator(1));
        var body = model.StateDict()["layer2.conv1.weight"].ToArray();
        DifferentialFineTune.ReplaceHead(model, 5, new Generator(3));
        Assert.Equal([2, 5], model.Forward(Tensor.Zeros(2, 1, 16, 16)).ShapeArray());
        Assert.Equal(body, model.StateDict()["layer2.conv1.weight"].ToArray());
        Assert.Throws<ArgumentException>(() => DifferentialFineTune.ReplaceHead(new Sequential(new ReLU()), 3));
    }
}

public class ResNetZooTests
{
    [Fact]
    public void ResNet18HasTorchvisionNamesAndTakesAnySize()
    {
        var net = ModelZoo.ResNet18(3, 1000, new Generator(1));
        var state = net.StateDict();
        // torchvision's resnet18 has 102 parameters and buffers besides num_batches_tracked (20 batch norms).
        Assert.Equal(102, state.Count);
        Assert.Equal([64, 3, 7, 7], state["conv1.weight"].ShapeArray());
        Assert.Equal([128, 64, 1, 1], state["layer2.0.downsample.0.weight"].ShapeArray());
        Assert.Equal([512], state["layer4.1.bn2.running_var"].ShapeArray());
        Assert.Equal([1000, 512], state["fc.weight"].ShapeArray());
        Assert.Equal(11_689_512, net.Parameters().Sum(p => (long)p.Length));
        Assert.Equal(21_797_672, ModelZoo.ResNet34().Parameters().Sum(p => (long)p.Length));
        net.Eval();
        using var noGrad = GradRecorder.NoGrad();
        Assert.Equal([2, 1000], net.Forward(Tensor.Uniform([2, 3, 40, 52])).ShapeArray());
        var groups = LayerGroups.Default(net);
        Assert.Equal(["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"], groups[0].Children);
    }

    [Fact]
    public void GreyAdaptedStemEqualsTheColourNetOnRepeatedChannels()
    {
        var colour = ModelZoo.ResNet18(3, 10, new Generator(4));
        var grey = ModelZoo.ResNet18(3, 10, new Generator(4));
        DifferentialFineTune.AdaptInputChannels(grey, 1);
        Assert.Equal([64, 1, 7, 7], ((Conv2d)grey[0]).Weight.ShapeArray());
        colour.Eval();
        grey.Eval();
        using var noGrad = GradRecorder.NoGrad();
        var x = Tensor.Uniform([2, 1, 32, 32], generator: new Generator(5));
        var repeated = Functional.Concat([x, x, x], 1);
        var a = colour.Forward(repeated).ToArray();
        var b = grey.Forward(x).ToArray();
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 1e-4);
        Assert.Throws<ArgumentException>(() => DifferentialFineTune.AdaptInputChannels(ModelZoo.ResNet18(3, 10), 2));
    }
}
