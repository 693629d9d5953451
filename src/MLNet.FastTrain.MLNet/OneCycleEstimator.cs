using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.MLNet;

/// <summary>The one-cycle policy (Smith, 2018) as an ML.NET trainer, with fastai's fit_one_cycle defaults.</summary>
public sealed class OneCycleEstimator : ImageClassifierEstimator<OneCycleEstimator.Options>
{
    internal OneCycleEstimator(IHostEnvironment context, Options options, IDataView? validationSet) : base(context, options, validationSet)
    {
        if (options.Epochs < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Epochs must be positive, not {options.Epochs}.");
        if (!(options.PctStart is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(options), $"PctStart must lie in (0, 1), not {options.PctStart}.");
    }

    /// <summary>One-cycle settings.</summary>
    public sealed class Options : ImageClassifierOptions
    {
        /// <summary>Epochs. Default 3.</summary>
        public int Epochs { get; set; } = 3;

        /// <summary>The share of the steps spent warming up. Default 0.25.</summary>
        public double PctStart { get; set; } = 0.25;

        /// <summary>The rate starts at the peak / Div. Default 25.</summary>
        public double Div { get; set; } = 25;

        /// <summary>The rate ends at the peak / DivFinal. Default 1e5.</summary>
        public double DivFinal { get; set; } = 1e5;
    }

    private protected override IReadOnlyList<TrainedModel> Train(ImageDataset train, ImageDataset? valid, Action<string> log)
    {
        var learner = CreateLearner(train, valid, log);
        double lr = ResolveLearningRate(learner, log, restartsAtPeak: false);
        // A one-cycle fit is judged at its end; early stopping would cut the annealing short.
        learner.FitOneCycle(Settings.Epochs, [lr], Settings.PctStart, Settings.Div, Settings.DivFinal, Limits(validated: false, atCycleEnds: false));
        return [Wrap(learner, train, Settings.Architecture)];
    }
}
