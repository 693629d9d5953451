using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;

namespace MLNet.FastTrain;

/// <summary>How test-time augmentation combines its passes.</summary>
public enum TtaMode
{
    /// <summary>fastai's default: (1 − Beta)·mean(augmented passes) + Beta·plain pass.</summary>
    Average,

    /// <summary>Per class, the largest probability over all passes (plain included), renormalised to sum to 1.</summary>
    Max,

    /// <summary>A deterministic set: the plain pass and its mirror image, averaged.</summary>
    Flips,
}

/// <summary>The effect of test-time augmentation on a labelled dataset.</summary>
public sealed record TtaReport(double PlainAccuracy, double TtaAccuracy, int Items)
{
    /// <summary>Accuracy gained (may be negative).</summary>
    public double Gain => TtaAccuracy - PlainAccuracy;
}

/// <summary>
/// Test-time augmentation: scores each image several times under random augmentations and combines the
/// probabilities with the plain prediction. It costs about one forward pass per augmented pass, batched.
/// </summary>
public sealed class TtaScorer
{
    private readonly ClassifierTransformer _model;
    private readonly Options _options;

    /// <summary>TTA settings; defaults are fastai's.</summary>
    public sealed class Options
    {
        /// <summary>Augmented passes. Default 4.</summary>
        public int AugmentedPasses { get; set; } = 4;

        /// <summary>Weight of the plain pass in <see cref="TtaMode.Average"/>. Default 0.25.</summary>
        public double Beta { get; set; } = 0.25;

        /// <summary>How passes combine. Default average.</summary>
        public TtaMode Mode { get; set; } = TtaMode.Average;

        /// <summary>The augmentation; default <see cref="Augmentations.BySize"/> (the recipes' training preset).</summary>
        public BatchTransform? Augmentation { get; set; }

        /// <summary>Seed of the augmentations. Default 0.</summary>
        public ulong Seed { get; set; }
    }

    /// <summary>Wraps a trained classifier.</summary>
    public TtaScorer(ClassifierTransformer model, Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _options = options ?? new Options();
        if (_options.AugmentedPasses < 1) throw new ArgumentOutOfRangeException(nameof(options), $"AugmentedPasses must be at least 1, not {_options.AugmentedPasses}.");
        if (_options.Beta is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"Beta must be in [0, 1], not {_options.Beta}.");
    }

    /// <summary>Scores every image with TTA.</summary>
    public IReadOnlyList<ClassificationRow> Transform(ImageDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Combine(data, _model.Transform(data));
    }

    /// <summary>The TTA rows, given the plain pass's rows.</summary>
    private List<ClassificationRow> Combine(ImageDataset data, IReadOnlyList<ClassificationRow> plain)
    {
        List<IReadOnlyList<ClassificationRow>> passes = _options.Mode == TtaMode.Flips
            ? [_model.Transform(data, Augmentations.Flip(1.0), _options.Seed, 0)]
            : Enumerable.Range(0, _options.AugmentedPasses)
                .Select(k => _model.Transform(data, _options.Augmentation ?? Augmentations.BySize(), _options.Seed, k + 1)).ToList();
        var rows = new List<ClassificationRow>(plain.Count);
        for (int i = 0; i < plain.Count; i++)
        {
            int c = plain[i].Score.Length;
            var score = new float[c];
            switch (_options.Mode)
            {
                case TtaMode.Max:
                    plain[i].Score.CopyTo(score, 0);
                    foreach (var pass in passes) for (int k = 0; k < c; k++) score[k] = Math.Max(score[k], pass[i].Score[k]);
                    float total = score.Sum();
                    for (int k = 0; k < c; k++) score[k] /= total;
                    break;
                case TtaMode.Flips:
                    for (int k = 0; k < c; k++) score[k] = 0.5f * (plain[i].Score[k] + passes[0][i].Score[k]);
                    break;
                default:
                    for (int k = 0; k < c; k++)
                    {
                        double mean = passes.Average(p => p[i].Score[k]);
                        score[k] = (float)((1 - _options.Beta) * mean + _options.Beta * plain[i].Score[k]);
                    }
                    break;
            }
            rows.Add(ClassificationRow.FromScore(score, _model.Classes));
        }
        return rows;
    }

    /// <summary>Accuracy with and without TTA on a labelled dataset.</summary>
    public TtaReport Evaluate(ImageDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var plain = _model.Transform(data);
        var tta = Combine(data, plain);
        double Accuracy(IReadOnlyList<ClassificationRow> rows) => rows.Where((r, i) => r.PredictedLabel == data.Classes[data.LabelOf(i)]).Count() / (double)data.Count;
        return new TtaReport(Accuracy(plain), Accuracy(tta), data.Count);
    }
}
