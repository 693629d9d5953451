using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// fastai's fine-tuning recipe as an ML.NET trainer, on a pretrained backbone: layer groups whose rates are
/// <c>GroupRateFactor</c> apart, the head trained first on precomputed activations of the frozen
/// body, then with augmentation and cycle length 1, then the whole net unfrozen, the LR finder again, and SGDR with
/// cycle multiplier 2 until the validation loss stops improving (the best cycle's weights are kept). Without a
/// backbone, a fresh zoo network skips the frozen stages.
/// </summary>
public sealed class DifferentialFineTuneEstimator : ImageClassifierEstimator<DifferentialFineTuneEstimator.Options>
{
    internal DifferentialFineTuneEstimator(IHostEnvironment context, Options options, IDataView? validationSet) : base(context, options, validationSet)
    {
        if (!(options.GroupRateFactor >= 1)) throw new ArgumentOutOfRangeException(nameof(options), $"GroupRateFactor must be at least 1 (fastai uses 3 to 10), not {options.GroupRateFactor}.");
        if (options.Cycles < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Cycles must be positive, not {options.Cycles}.");
        if (options.CycleMult < 1) throw new ArgumentOutOfRangeException(nameof(options), $"CycleMult must be at least 1, not {options.CycleMult}.");
        if (options.PrecomputedEpochs < 0 || options.AugmentedHeadCycles < 0) throw new ArgumentOutOfRangeException(nameof(options), "PrecomputedEpochs and AugmentedHeadCycles must not be negative.");
        if (options.Backbone is { } path && !PretrainedModels.IsName(path) && !File.Exists(path))
            throw new FileNotFoundException($"The backbone '{path}' does not exist; give \"{PretrainedModels.ResNet18ImageNet}\", an ONNX file or a .ftm model to fine-tune.", path);
    }

    /// <summary>The recipe's settings; the defaults are fastai's.</summary>
    public sealed class Options : ImageClassifierOptions
    {
        /// <summary>
        /// The pretrained network: "resnet18-imagenet" (ML.NET's ImageNet ResNet-18, from the package
        /// Microsoft.ML.DnnImageFeaturizer.ResNet18), an ONNX file or a .ftm model. Null trains
        /// <see cref="ImageClassifierOptions.Architecture"/> fresh (frozen stages skipped).
        /// </summary>
        public string? Backbone { get; set; }

        /// <summary>Epochs of head training on precomputed activations (0 skips the stage). Default 1.</summary>
        public int PrecomputedEpochs { get; set; } = 1;

        /// <summary>One-epoch cycles of head training with augmentation through the frozen body (0 skips). Default 2.</summary>
        public int AugmentedHeadCycles { get; set; } = 2;

        /// <summary>How much lower each earlier layer group's rate is than the next one's. Default 3 (fastai's lr/9, lr/3, lr).</summary>
        public double GroupRateFactor { get; set; } = 3;

        /// <summary>SGDR cycles of the unfrozen stage, at most. Default 3 (1 + 2 + 4 epochs).</summary>
        public int Cycles { get; set; } = 3;

        /// <summary>Growth of each cycle in the unfrozen stage. Default 2.</summary>
        public int CycleMult { get; set; } = 2;

        /// <summary>The head's learning rate in the frozen stages; null runs the LR finder. Default null.</summary>
        public double? HeadLearningRate { get; set; }

        /// <summary>A folder where precomputed activations are kept for later fits on the same body and data. Default none.</summary>
        public string? ActivationCacheDirectory { get; set; }
    }

    /// <summary>A named backbone is trained at 64 pixels unless ImageSize says otherwise: ImageNet ResNet-18 needs more than 32.</summary>
    private protected override int? DefaultImageSize => Settings.Backbone is { } b && PretrainedModels.IsName(b) ? 64 : null;

    /// <summary>The stages of the last <c>Fit</c>: name, learning rate, epochs, validation loss and accuracy.</summary>
    public IReadOnlyList<FineTuneStage> Stages { get; private set; } = [];

    private protected override IReadOnlyList<TrainedModel> Train(ImageDataset train, ImageDataset? valid, Action<string> log)
    {
        var pretrained = Settings.Backbone is { } path
            ? PretrainedModels.LoadForFineTuning(path, train.Channels, train.Classes, (ulong)Settings.Seed, (train.Height, train.Width))
            : new PretrainedNetwork(TrainedModel.CreateNetwork(Settings.Architecture, train.Channels, train.Classes.Count, new Engine.Generator((ulong)Settings.Seed)), Settings.Architecture, null);
        var (network, architecture) = (pretrained.Network, pretrained.Architecture);
        var fineTune = new DifferentialFineTune(network);
        var learner = Learning.Learner.ForImageClassification(train, valid, network, fineTune.CreateParamGroups(), Settings.BatchSize, (ulong)Settings.Seed, pretrained.Normalization);
        Prepare(learner, log);
        foreach (var limit in Limits(validated: false, atCycleEnds: false)) learner.Add(limit);
        Stages = FineTuneRecipe.Run(learner, fineTune, new FineTuneRecipe.Options
        {
            Pretrained = Settings.Backbone is not null,
            PrecomputedEpochs = Settings.PrecomputedEpochs,
            AugmentedHeadCycles = Settings.AugmentedHeadCycles,
            Augmentation = Settings.Augment ? Vision.Transforms.Augmentations.BySize() : null,
            GroupRateFactor = Settings.GroupRateFactor,
            Cycles = Settings.Cycles,
            CycleMult = Settings.CycleMult,
            Patience = Settings.EarlyStoppingPatience ?? 0,
            ActivationCacheDirectory = Settings.ActivationCacheDirectory,
            HeadLearningRate = Settings.HeadLearningRate,
            LearningRate = Settings.LearningRate,
            Suggestion = Settings.Suggestion,
        });
        LearningRate = Stages.Count > 0 ? Stages[^1].LearningRate : null;
        foreach (var stage in Stages)
            log(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{stage.Name}: lr {stage.LearningRate:G3}, {stage.Epochs} epochs, valid loss {stage.ValidLoss:F4}, accuracy {stage.Accuracy:P2}"));
        return [Wrap(learner, train, architecture)];
    }
}
