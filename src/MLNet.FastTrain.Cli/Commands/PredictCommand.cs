using System.CommandLine;
using System.Globalization;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain predict</c>: labels and probabilities for image files with a trained model.</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "a trained model (.ftm, or .onnx exported by fasttrain)", Required = true };
        var input = new Argument<string>("IMAGE|FOLDER") { Description = "an image file, or a folder whose images (searched recursively) are all scored" };
        var tta = new Option<bool>("--tta") { Description = "average over test-time augmentations" };
        var json = new Option<bool>("--json") { Description = "print one JSON object: labels, and predictions with file, label and score" };
        var command = new Command("predict", "Predict the class of images.") { model, input, tta, json };
        command.SetAction(p => CliSupport.Run(p, _ =>
        {
            var trained = ModelSource.LoadTrained(p.GetValue(model)!);
            string target = p.GetValue(input)!;
            string[] files;
            if (Directory.Exists(target))
                files = [.. ImageFiles.ImagesUnder(target)];
            else if (File.Exists(target))
                files = [target];
            else
                throw new FileNotFoundException($"'{target}' is neither an image file nor a folder.", target);
            if (files.Length == 0) throw new InvalidDataException($"The folder '{target}' holds no images.");

            var (c, h, w) = trained.InputSize;
            var pixels = new byte[(long)files.Length * c * h * w];
            Parallel.For(0, files.Length, i => ImageFiles.LoadImage(files[i], c, h, w).CopyTo(pixels.AsSpan(i * c * h * w)));
            var data = new ImageDataset(pixels, new int[files.Length], c, h, w, trained.Classes);
            var classifier = new ClassifierTransformer(trained);
            var rows = p.GetValue(tta) ? new TtaScorer(classifier).Transform(data) : classifier.Transform(data);

            if (p.GetValue(json))
            {
                CliSupport.WriteJson(new Dictionary<string, object?>
                {
                    ["labels"] = trained.Classes,
                    ["predictions"] = files.Select((f, i) => new Dictionary<string, object?>
                    {
                        ["file"] = f, ["label"] = rows[i].PredictedLabel, ["score"] = rows[i].Score.Select(v => Math.Round(v, 6)).ToArray(),
                    }).ToArray(),
                });
            }
            else
            {
                for (int i = 0; i < files.Length; i++)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{files[i]}\t{rows[i].PredictedLabel}\t{rows[i].Score.Max():P1}"));
            }
            return CliSupport.Success;
        }));
        return command;
    }
}
