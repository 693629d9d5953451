using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.Models;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// Writes a classifier trained outside a pipeline (by <c>fasttrain train</c>, or with the library's own API) as the
/// ML.NET model zip <c>mlContext.Model.Save</c> would write: input a text column <c>ImagePath</c>, outputs
/// <c>Score</c> (probabilities in class order) and <c>PredictedLabel</c> (the class name). An app loads it with
/// <c>mlContext.Model.Load</c> and scores it with a prediction engine.
/// </summary>
public static class MLNetModelFile
{
    /// <summary>The input column: the image file's path (absolute, or relative to the working directory).</summary>
    public const string ImagePathColumn = "ImagePath";

    private const string BytesColumn = "FastTrainEncodedImage";

    /// <summary>Writes the model (or a snapshot ensemble's members) to <paramref name="path"/>, atomically.</summary>
    public static void Save(IReadOnlyList<TrainedModel> members, string path, bool testTimeAugmentation = false)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (members.Count == 0) throw new ArgumentException("There is no model to save.", nameof(members));
        var ml = new MLContext();
        var empty = ml.Data.LoadFromEnumerable(Array.Empty<PathRow>());
        var load = ml.Transforms.LoadRawImageBytes(BytesColumn, null, ImagePathColumn).Fit(empty);
        var loaded = load.Transform(empty);
        var (channels, height, width) = members[0].InputSize;
        var input = ImageInput.ForSize(ImageInputKind.Bytes, BytesColumn, channels, height, width);
        var preprocessing = input.Preprocessing(ml)!.Fit(loaded);
        var fitted = new FittedClassifier(members, input, preprocessing, "Score", "PredictedLabel", members[0].Classes);
        var scoring = ScoringChain.Build(ml, loaded, fitted, testTimeAugmentation, beta: 0.25);
        var scored = scoring.Transform(loaded);
        var names = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored);
        var drop = ml.Transforms.DropColumns(BytesColumn).Fit(names.Transform(scored));
        var model = new TransformerChain<ITransformer>(load, scoring, names, drop);
        Engine.Serialization.AtomicFile.Write(path, stream => ml.Model.Save(model, empty.Schema, stream));
    }

    /// <summary>The model's input row.</summary>
    public sealed class PathRow
    {
        /// <summary>The image file.</summary>
        public string ImagePath { get; set; } = "";
    }
}
