using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// Leslie Smith's learning-rate range test on an <see cref="IDataView"/>, on its own: the rate rises exponentially
/// batch by batch while the smoothed loss is recorded, stopping when it diverges. <see cref="Find"/> returns the
/// curve, the suggestions of every rule and an SVG plot; the network is thrown away afterwards. Every trainer
/// whose learning rate is null runs the same test first.
/// </summary>
public sealed class LrFinderEstimator : ImageClassifierEstimator<LrFinderEstimator.Options>
{
    private LrFinderResult? _result;

    internal LrFinderEstimator(IHostEnvironment context, Options options) : base(context, options, null) { }

    /// <summary>The range test's settings (the column names, architecture, size and batch size of the trainer it is for).</summary>
    public sealed class Options : ImageClassifierOptions
    {
        /// <summary>The first rate tried. Default 1e-7.</summary>
        public double StartLr { get; set; } = 1e-7;

        /// <summary>The last rate tried. Default 10.</summary>
        public double EndLr { get; set; } = 10;

        /// <summary>Batches of the ramp. Default 100.</summary>
        public int Iterations { get; set; } = 100;
    }

    /// <summary>Runs the test on <paramref name="data"/>.</summary>
    public LrFinderResult Find(IDataView data)
    {
        Settings.ValidationFraction = 0;
        Settings.LearningRate = null;
        Fit(data);
        return _result!;
    }

    private protected override IReadOnlyList<TrainedModel> Train(ImageDataset train, ImageDataset? valid, Action<string> log)
    {
        var learner = CreateLearner(train, valid, log);
        _result = LrFinder.Run(learner, new LrFinder.Options
        {
            StartLr = Settings.StartLr, EndLr = Settings.EndLr, Iterations = Settings.Iterations, Suggestion = Settings.Suggestion,
        });
        LrFinderResult = _result;
        LearningRate = _result.Suggestions.GetValueOrDefault(Settings.Suggestion, _result.Suggested);
        return [Wrap(learner, train, Settings.Architecture)];
    }
}
