using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain predict</c>: labels and probabilities for image files with a trained model.</summary>
internal static class PredictCommand
{
    /// <summary>Images decoded, scored and written at a time.</summary>
    private const int Chunk = 256;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "a trained model (.ftm, or .onnx exported by fasttrain)", Required = true };
        var input = new Argument<string>("IMAGE|FOLDER") { Description = "an image file, or a folder whose images (searched recursively) are all scored, 256 at a time, each result written as it comes" };
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

            // A chunk at a time: decoded in parallel, scored, written, so that memory holds one chunk's images
            // whatever the folder's size, and what was written stays written if a later file fails.
            var (c, h, w) = trained.InputSize;
            var classifier = new ClassifierTransformer(trained);
            var scorer = p.GetValue(tta) ? new TtaScorer(classifier) : null;
            bool asJson = p.GetValue(json);
            using var stdout = Console.OpenStandardOutput();
            using var writer = new Utf8JsonWriter(stdout);
            if (asJson)
            {
                writer.WriteStartObject();
                writer.WritePropertyName("labels");
                JsonSerializer.Serialize(writer, trained.Classes);
                writer.WriteStartArray("predictions");
            }
            for (int start = 0; start < files.Length; start += Chunk)
            {
                var chunk = files.AsSpan(start, Math.Min(Chunk, files.Length - start)).ToArray();
                var pixels = new byte[chunk.Length * c * h * w];
                Parallel.For(0, chunk.Length, i => ImageFiles.LoadImage(chunk[i], c, h, w).CopyTo(pixels.AsSpan(i * c * h * w)));
                var data = new ImageDataset(pixels, new int[chunk.Length], c, h, w, trained.Classes);
                var rows = scorer is not null ? scorer.Transform(data) : classifier.Transform(data);
                for (int i = 0; i < chunk.Length; i++)
                {
                    if (asJson)
                    {
                        writer.WriteStartObject();
                        writer.WriteString("file", chunk[i]);
                        writer.WriteString("label", rows[i].PredictedLabel);
                        writer.WriteStartArray("score");
                        foreach (var v in rows[i].Score) writer.WriteNumberValue(Math.Round(v, 6));
                        writer.WriteEndArray();
                        writer.WriteEndObject();
                    }
                    else
                    {
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{chunk[i]}\t{rows[i].PredictedLabel}\t{rows[i].Score.Max():P1}"));
                    }
                }
                writer.Flush();
            }
            if (asJson)
            {
                writer.WriteEndArray();
                writer.WriteEndObject();
                writer.Flush();
                stdout.Write("\n"u8);
            }
            return CliSupport.Success;
        }));
        return command;
    }
}
