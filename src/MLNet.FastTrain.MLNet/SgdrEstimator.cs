using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// SGD with warm restarts (Loshchilov and Hutter, 2017) as an ML.NET trainer: the learning rate anneals along a
/// cosine within each cycle, per mini-batch, and restarts at the peak; cycle i lasts CycleLength · CycleMult^i
/// epochs. Optionally the weights at each cycle's end form a snapshot ensemble (Huang et al., 2017).
/// </summary>
public sealed class SgdrEstimator : ImageClassifierEstimator<SgdrEstimator.Options>
{
    internal SgdrEstimator(IHostEnvironment context, Options options, IDataView? validationSet) : base(context, options, validationSet)
    {
        if (options.Cycles < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Cycles must be positive, not {options.Cycles}.");
        if (options.CycleLength < 1) throw new ArgumentOutOfRangeException(nameof(options), $"CycleLength must be positive, not {options.CycleLength}.");
        if (options.CycleMult < 1) throw new ArgumentOutOfRangeException(nameof(options), $"CycleMult must be at least 1, not {options.CycleMult}.");
        if (!(options.MinLr >= 0)) throw new ArgumentOutOfRangeException(nameof(options), $"MinLr must not be negative, not {options.MinLr}.");
    }

    /// <summary>SGDR settings; the defaults are fastai's cycle_len=1, cycle_mult=2.</summary>
    public sealed class Options : ImageClassifierOptions
    {
        /// <summary>Cycles. Default 3 (1 + 2 + 4 epochs).</summary>
        public int Cycles { get; set; } = 3;

        /// <summary>Epochs in the first cycle (fastai's cycle_len). Default 1.</summary>
        public int CycleLength { get; set; } = 1;

        /// <summary>Each cycle is this many times longer than the one before (fastai's cycle_mult). Default 2.</summary>
        public int CycleMult { get; set; } = 2;

        /// <summary>The floor each cycle anneals to. Default 0.</summary>
        public double MinLr { get; set; }

        /// <summary>Average the probabilities of the weights at every cycle's end (a snapshot ensemble). Default false.</summary>
        public bool SnapshotEnsemble { get; set; }
    }

    private protected override IReadOnlyList<TrainedModel> Train(ImageDataset train, ImageDataset? valid, Action<string> log)
    {
        var learner = CreateLearner(train, valid, log);
        double lr = ResolveLearningRate(learner, log, restartsAtPeak: true);
        var snapshots = learner.FitSgdr(Settings.Cycles, [lr], Settings.CycleLength, Settings.CycleMult, Settings.MinLr, Settings.SnapshotEnsemble,
            Limits(valid is not null, atCycleEnds: true));
        var model = Wrap(learner, train, Settings.Architecture);
        if (!Settings.SnapshotEnsemble || snapshots.Count < 2) return [model];
        return snapshots.Select(state =>
        {
            var net = TrainedModel.CreateNetwork(Settings.Architecture, train.Channels, train.Classes.Count);
            net.LoadStateDict(state);
            return new TrainedModel(net, Settings.Architecture, train.Classes, model.Normalization, model.InputSize);
        }).ToList();
    }
}
