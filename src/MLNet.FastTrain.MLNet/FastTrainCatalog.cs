using MLNet.FastTrain.MLNet;
using static Microsoft.ML.MulticlassClassificationCatalog;

namespace Microsoft.ML;

/// <summary>
/// MLNet.FastTrain's trainers on <c>mlContext.MulticlassClassification.Trainers</c> and test-time augmentation on
/// <c>mlContext.Transforms</c>. Each trainer has ML.NET's two forms: column names with defaults, or an
/// <c>Options</c> object.
/// </summary>
public static class FastTrainCatalog
{
    /// <summary>SGD with warm restarts: cosine annealing per mini-batch, cycle length 1, cycle multiplier 2, the LR finder first.</summary>
    public static SgdrEstimator Sgdr(this MulticlassClassificationTrainers catalog, string labelColumnName = "Label", string featureColumnName = "Features",
        string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel", IDataView? validationSet = null) =>
        catalog.Sgdr(Columns(new SgdrEstimator.Options(), labelColumnName, featureColumnName, scoreColumnName, predictedLabelColumnName), validationSet);

    /// <summary>SGD with warm restarts, every setting given.</summary>
    public static SgdrEstimator Sgdr(this MulticlassClassificationTrainers catalog, SgdrEstimator.Options options, IDataView? validationSet = null) =>
        new(ContextOf(catalog), options, validationSet);

    /// <summary>The one-cycle policy, with fastai's defaults, the LR finder first.</summary>
    public static OneCycleEstimator OneCycle(this MulticlassClassificationTrainers catalog, string labelColumnName = "Label", string featureColumnName = "Features",
        string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel", IDataView? validationSet = null) =>
        catalog.OneCycle(Columns(new OneCycleEstimator.Options(), labelColumnName, featureColumnName, scoreColumnName, predictedLabelColumnName), validationSet);

    /// <summary>The one-cycle policy, every setting given.</summary>
    public static OneCycleEstimator OneCycle(this MulticlassClassificationTrainers catalog, OneCycleEstimator.Options options, IDataView? validationSet = null) =>
        new(ContextOf(catalog), options, validationSet);

    /// <summary>fastai's fine-tuning recipe on a pretrained backbone (an ONNX file or a .ftm model).</summary>
    public static DifferentialFineTuneEstimator DifferentialFineTune(this MulticlassClassificationTrainers catalog, string? backbone, string labelColumnName = "Label",
        string featureColumnName = "Features", string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel", IDataView? validationSet = null)
    {
        var options = Columns(new DifferentialFineTuneEstimator.Options(), labelColumnName, featureColumnName, scoreColumnName, predictedLabelColumnName);
        options.Backbone = backbone;
        return catalog.DifferentialFineTune(options, validationSet);
    }

    /// <summary>fastai's fine-tuning recipe, every setting given.</summary>
    public static DifferentialFineTuneEstimator DifferentialFineTune(this MulticlassClassificationTrainers catalog, DifferentialFineTuneEstimator.Options options, IDataView? validationSet = null) =>
        new(ContextOf(catalog), options, validationSet);

    /// <summary>The learning-rate range test on its own: <c>.Find(data)</c> gives the curve, the suggestions and a plot.</summary>
    public static LrFinderEstimator LrFinder(this MulticlassClassificationTrainers catalog, string labelColumnName = "Label", string featureColumnName = "Features") =>
        catalog.LrFinder(Columns(new LrFinderEstimator.Options(), labelColumnName, featureColumnName, "Score", "PredictedLabel"));

    /// <summary>The learning-rate range test, every setting given.</summary>
    public static LrFinderEstimator LrFinder(this MulticlassClassificationTrainers catalog, LrFinderEstimator.Options options) =>
        new(ContextOf(catalog), options);

    /// <summary>
    /// Test-time augmentation for a model fitted in this process by one of these trainers (alone or inside a
    /// chain): <c>Fit</c> with the data the model takes returns the same model scoring with TTA.
    /// </summary>
    public static TtaScoringEstimator TtaScore(this TransformsCatalog catalog, ITransformer model, double beta = 0.25)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new(ContextOf(catalog), model, beta);
    }

    private static T Columns<T>(T options, string label, string feature, string score, string predicted) where T : ImageClassifierOptions
    {
        options.LabelColumnName = label;
        options.FeatureColumnName = feature;
        options.ScoreColumnName = score;
        options.PredictedLabelColumnName = predicted;
        return options;
    }

    private static Runtime.IHostEnvironment ContextOf(object catalog) => CatalogContext.Of(catalog);
}
