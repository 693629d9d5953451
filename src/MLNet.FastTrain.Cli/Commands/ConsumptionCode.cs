using System.Globalization;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>
/// The C# file <c>train --out</c> writes beside the model, as Model Builder does: a program that loads the model and
/// predicts the image given on its command line. It needs a reference to the MLNet.FastTrain library.
/// </summary>
internal static class ConsumptionCode
{
    /// <summary>"model.ftm" → "model.Predict.cs" in the same folder.</summary>
    public static string PathFor(string modelPath) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, Path.GetFileNameWithoutExtension(modelPath) + ".Predict.cs");

    public static string Write(string modelPath, IReadOnlyList<string> classes)
    {
        var path = PathFor(modelPath);
        var full = Path.GetFullPath(modelPath).Replace("\"", "\"\"", StringComparison.Ordinal);
        var code = $$"""
            // Scores an image with the classifier fasttrain trained ({{string.Join(", ", classes.Take(6))}}{{(classes.Count > 6 ? ", ..." : "")}}).
            // Build it in a console project that references the MLNet.FastTrain library, then run:
            //   dotnet run -- IMAGE [MODEL]
            // MODEL defaults to the file this code was written beside.
            using System.Globalization;
            using MLNet.FastTrain;
            using MLNet.FastTrain.Models;
            using MLNet.FastTrain.Vision.Datasets;

            const string DefaultModel = @"{{full}}";

            if (args.Length < 1)
            {
                Console.Error.WriteLine("usage: IMAGE [MODEL]");
                return 2;
            }
            var model = TrainedModel.Load(args.Length > 1 ? args[1] : DefaultModel);
            var (channels, height, width) = model.InputSize;
            var pixels = ImageFiles.LoadImage(args[0], channels, height, width);
            var prediction = new ClassifierTransformer(model).Predict(pixels);
            Console.WriteLine(prediction.PredictedLabel);
            for (int i = 0; i < model.Classes.Count; i++)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {model.Classes[i]}: {prediction.Score[i]:F4}"));
            return 0;

            """;
        File.WriteAllText(path, code);
        return path;
    }

}
