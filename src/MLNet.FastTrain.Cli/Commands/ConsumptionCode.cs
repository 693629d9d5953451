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

    public static string Write(string modelPath, IReadOnlyList<string> classes) => Save(modelPath, full => $$"""
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

            """);

    /// <summary>The program for an ML.NET model zip: MLContext, Model.Load and a prediction engine.</summary>
    public static string WriteMLNet(string modelPath, IReadOnlyList<string> classes) => Save(modelPath, full => $$"""
            // Scores an image with the ML.NET model fasttrain trained ({{string.Join(", ", classes.Take(6))}}{{(classes.Count > 6 ? ", ..." : "")}}).
            // Build it in a console project that references Microsoft.ML, Microsoft.ML.ImageAnalytics,
            // Microsoft.ML.OnnxTransformer, Microsoft.ML.OnnxRuntime and MLNet.FastTrain.MLNet, then run:
            //   dotnet run -- IMAGE [MODEL]
            // MODEL defaults to the file this code was written beside.
            using System.Globalization;
            using Microsoft.ML;

            const string DefaultModel = @"{{full}}";

            if (args.Length < 1)
            {
                Console.Error.WriteLine("usage: IMAGE [MODEL]");
                return 2;
            }
            var ml = new MLContext();
            var model = ml.Model.Load(args.Length > 1 ? args[1] : DefaultModel, out _);
            var engine = ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
            var prediction = engine.Predict(new ModelInput { ImagePath = Path.GetFullPath(args[0]) });
            Console.WriteLine(prediction.PredictedLabel);
            string[] classes = [{{string.Join(", ", classes.Select(c => "@\"" + c.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""))}}];
            for (int i = 0; i < prediction.Score.Length; i++)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {classes[i]}: {prediction.Score[i]:F4}"));
            return 0;

            /// <summary>The model's input: an image file.</summary>
            public sealed class ModelInput
            {
                public string ImagePath { get; set; } = "";
            }

            /// <summary>The model's output: the class name and the probabilities in class order.</summary>
            public sealed class ModelOutput
            {
                public string PredictedLabel { get; set; } = "";

                public float[] Score { get; set; } = [];
            }

            """);

    /// <summary>Writes the program made for the model's full path (quoted for a verbatim string) beside the model.</summary>
    private static string Save(string modelPath, Func<string, string> code)
    {
        var path = PathFor(modelPath);
        Engine.Serialization.AtomicFile.WriteAllText(path, code(Path.GetFullPath(modelPath).Replace("\"", "\"\"", StringComparison.Ordinal)));
        return path;
    }
}
