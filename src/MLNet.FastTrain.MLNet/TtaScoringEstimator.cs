using Microsoft.ML;
using Microsoft.ML.Runtime;
using Microsoft.ML.Data;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// Test-time augmentation for a model fitted by one of this package's trainers: the fitted model with its scoring
/// graph replaced by one that averages the predictions for the image, its mirror and three shifted crops with
/// fastai's β mix (β × plain + (1 − β) × augmented mean). The augmentations are fixed, so the result saves, loads
/// and scores like any other model. Its <c>Fit</c> takes the data the fitted model takes and learns nothing from it.
/// </summary>
public sealed class TtaScoringEstimator : IEstimator<ITransformer>
{
    private readonly MLContext _context = new();
    private readonly ITransformer _model;
    private readonly double _beta;

    internal TtaScoringEstimator(IHostEnvironment context, ITransformer model, double beta)
    {
        ArgumentNullException.ThrowIfNull(context);
        _model = model ?? throw new ArgumentNullException(nameof(model));
        if (!(beta is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(beta), $"Beta must lie in [0, 1], not {beta}.");
        _beta = beta;
        if (First(model) is null)
            throw new ArgumentException("The model holds no classifier fitted by MLNet.FastTrain in this process. A model loaded from a zip keeps the scoring it was saved with: "
                + "apply TtaScore before saving, or train with TestTimeAugmentation = true.", nameof(model));
    }

    /// <inheritdoc/>
    public ITransformer Fit(IDataView input) => Apply(_context, _model, input, _beta);

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var fitted = First(_model)!;
        return SchemaShapes.AddClassifierOutputs(inputSchema, fitted.ScoreColumn, fitted.PredictedLabelColumn,
            new KeyDataViewType(typeof(uint), Math.Max(1, fitted.Classes.Count)), keyValues: true);
    }

    private static FittedClassifier? First(ITransformer model) =>
        ScoringChain.Find(model) ?? (model is IEnumerable<ITransformer> chain ? chain.Select(First).FirstOrDefault(f => f is not null) : null);

    /// <summary>The model with every classifier of this package in it rebuilt to score with TTA.</summary>
    internal static ITransformer Apply(MLContext context, ITransformer model, IDataView input, double beta)
    {
        if (ScoringChain.Find(model) is { } fitted) return ScoringChain.Build(context, input, fitted, tta: true, beta);
        if (model is not IEnumerable<ITransformer> chain) return model;
        var parts = new List<ITransformer>();
        var data = input;
        foreach (var part in chain)
        {
            var replaced = Apply(context, part, data, beta);
            parts.Add(replaced);
            data = replaced.Transform(data);
        }
        return new TransformerChain<ITransformer>([.. parts]);
    }

}
