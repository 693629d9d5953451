using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Models;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class FineTuneRecipeTests
{
    [Fact]
    public void Pretrained_recipe_runs_every_stage_in_order_and_ends_unfrozen()
    {
        // "Pretrain" a body for one epoch, then fine-tune a new head with the whole recipe.
        var (train, valid) = TestData.Loaders(batch: 64);
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        new Learner(model, train, valid).FitOneCycle(1, [0.005]);
        DifferentialFineTune.ReplaceHead(model, 10, new Generator(2));

        var ft = new DifferentialFineTune(model);
        var learner = new Learner(model, new DataLoader(TestData.Train, 64, shuffle: true, seed: 4, dropLast: true), valid, new AdamW(ft.CreateParamGroups()));
        var log = new List<string>();
        learner.Log += (_, m) => log.Add(m);
        var stages = FineTuneRecipe.Run(learner, ft, new FineTuneRecipe.Options { PrecomputedEpochs = 1, AugmentedHeadCycles = 1, Cycles = 2, HeadLearningRate = 0.003 });

        Assert.Equal(["precomputed head", "augmented head", "unfrozen SGDR"], stages.Select(s => s.Name));
        Assert.Equal(0.003, stages[0].LearningRate);
        Assert.All(stages, s => Assert.True(s.ValidLoss is > 0 and < 3, $"{s.Name}: valid loss {s.ValidLoss}"));
        Assert.Contains(log, m => m.StartsWith("head: epoch 1/1", StringComparison.Ordinal));
        Assert.Contains(log, m => m.StartsWith("Fine-tune: unfrozen.", StringComparison.Ordinal));
        Assert.Equal(0, ft.FrozenGroups);
        Assert.True(model.Parameters().All(p => p.RequiresGrad));
        // Earlier groups trained at a third of the next group's rate.
        var lrs = learner.Recorder.Batches[^1].LearningRates;
        Assert.Equal(3, lrs[2] / lrs[0], 6);
        Assert.Equal(3, lrs[4] / lrs[2], 6);
    }

    [Fact]
    public void Fresh_networks_skip_the_frozen_stages_and_say_so()
    {
        var (train, valid) = TestData.Loaders(batch: 64);
        var model = ModelZoo.ResNetSmall(generator: new Generator(1));
        var ft = new DifferentialFineTune(model);
        var learner = new Learner(model, train, valid, new AdamW(ft.CreateParamGroups()));
        var log = new List<string>();
        learner.Log += (_, m) => log.Add(m);
        var stages = FineTuneRecipe.Run(learner, ft, new FineTuneRecipe.Options { Pretrained = false, Cycles = 1, LearningRate = 0.003 });
        Assert.Single(stages);
        Assert.Contains(log, m => m.Contains("not pretrained", StringComparison.Ordinal));
        Assert.NotNull(train.BatchTransform);                                      // augmentation on by default
    }

    [Fact]
    public void The_recipe_needs_fine_tune_parameter_groups()
    {
        var (train, valid) = TestData.Loaders();
        var model = ModelZoo.ResNetSmall();
        var learner = new Learner(model, train, valid);
        Assert.Throws<ArgumentException>(() => FineTuneRecipe.Run(learner, new DifferentialFineTune(model)));
    }
}
