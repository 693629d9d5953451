// ML.NET's own transfer learning against the fine-tuning recipe, on the same ImageNet ResNet-18 and the same
// images, in one run: DnnFeaturizeImage (the frozen ResNet-18 at 224 × 224) + AppendCacheCheckpoint +
// LbfgsMaximumEntropy, then DifferentialFineTune on resnet18-imagenet. Prints one line per arm: test accuracy
// (micro), macro accuracy, log loss and wall seconds.
//   dotnet run -c Release --project bench/MLNetAnchor -- [--train N] [--test N] [--size PX] [--data IDX_FOLDER]
//   dotnet run -c Release --project bench/MLNetAnchor -- --photos DIR [--size PX]   (DIR from bench/make_photo_crops.py)
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.MLNet;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Encoders;
using MLNetAnchor;

var options = args.Select((a, i) => (a, i)).Where(p => p.a.StartsWith("--", StringComparison.Ordinal))
    .ToDictionary(p => p.a, p => p.i + 1 < args.Length ? args[p.i + 1] : "");
int trainCount = int.Parse(options.GetValueOrDefault("--train", "2000"), CultureInfo.InvariantCulture);
int testCount = int.Parse(options.GetValueOrDefault("--test", "1000"), CultureInfo.InvariantCulture);
int size = int.Parse(options.GetValueOrDefault("--size", "64"), CultureInfo.InvariantCulture);
string data = options.GetValueOrDefault("--data", Directory.Exists("/usr/share/datasets/fashion-mnist") ? "/usr/share/datasets/fashion-mnist" : "data/fashion-mnist-mini");

string folder;
List<ImageRow> trainRows, testRows;
if (options.TryGetValue("--photos", out var photos))
{
    folder = photos;
    (trainRows, testRows) = (ReadTable(Path.Combine(photos, "train.tsv")), ReadTable(Path.Combine(photos, "test.tsv")));
    Console.WriteLine($"{trainRows.Count} training and {testRows.Count} test photographs from {photos}");
}
else
{
    folder = Path.Combine(Path.GetTempPath(), $"fasttrain-anchor-{trainCount}-{testCount}");
    (trainRows, testRows) = WriteImages(data, folder, trainCount, testCount);
    Console.WriteLine($"{trainRows.Count} training and {testRows.Count} test images from {data}, written as PNG to {folder}");
}

var ml = new MLContext(seed: 1);
var train = ml.Data.LoadFromEnumerable(trainRows);
var test = ml.Data.LoadFromEnumerable(testRows);

// ML.NET's own: the frozen featurizer and a linear model on its 512 features.
var clock = Stopwatch.StartNew();
var mlnet = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadImages("Image", folder, "ImagePath"))
    .Append(ml.Transforms.ResizeImages("Resized", 224, 224, "Image"))
    .Append(ml.Transforms.ExtractPixels("Pixels", "Resized"))
    .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"))
    .AppendCacheCheckpoint(ml)
    .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("Label", "Features"));
var mlnetModel = mlnet.Fit(train);
var mlnetMetrics = ml.MulticlassClassification.Evaluate(mlnetModel.Transform(test));
Report("DnnFeaturizeImage(ResNet18) + LbfgsMaximumEntropy", mlnetMetrics, clock.Elapsed.TotalSeconds);

// The recipe: head on precomputed activations, head with augmentation, unfreeze, lower rates for earlier groups.
clock.Restart();
var trainer = ml.MulticlassClassification.Trainers.DifferentialFineTune(new DifferentialFineTuneEstimator.Options
{
    Backbone = "resnet18-imagenet", FeatureColumnName = "Image", ImageSize = size,
});
var ours = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadRawImageBytes("Image", folder, "ImagePath"))
    .Append(trainer);
var oursModel = ours.Fit(train);
var oursMetrics = ml.MulticlassClassification.Evaluate(oursModel.Transform(test));
Report($"DifferentialFineTune(resnet18-imagenet) at {size} px", oursMetrics, clock.Elapsed.TotalSeconds);
Console.WriteLine("stages: " + string.Join("; ", trainer.Stages.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Name} {s.Epochs} epochs lr {s.LearningRate:G3} accuracy {s.Accuracy:P1}"))));

static void Report(string arm, MulticlassClassificationMetrics m, double seconds) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{arm}: accuracy {m.MicroAccuracy:P2}, macro {m.MacroAccuracy:P2}, log loss {m.LogLoss:F4}, {seconds:F1} s"));

// A table "ImagePath<TAB>Label" with a header line.
static List<ImageRow> ReadTable(string path) =>
    File.ReadLines(path).Skip(1).Select(l => l.Split('\t')).Select(f => new ImageRow { ImagePath = f[0], Label = f[1] }).ToList();

// The first images of the IDX set's training and test files, as PNG files and rows.
static (List<ImageRow> Train, List<ImageRow> Test) WriteImages(string idx, string folder, int trainCount, int testCount)
{
    Directory.CreateDirectory(folder);
    var (trainSet, testSet) = IdxDataset.Load(idx);
    List<ImageRow> Rows(ImageDataset set, string name, int count)
    {
        var rows = new List<ImageRow>();
        for (int i = 0; i < Math.Min(count, set.Count); i++)
        {
            string file = $"{name}-{i:D5}.png";
            string path = Path.Combine(folder, file);
            if (!File.Exists(path)) PngEncoder.Save(path, set.Pixels(i), set.Width, set.Height, set.Channels);
            rows.Add(new ImageRow { ImagePath = file, Label = set.Classes[set.LabelOf(i)] });
        }
        return rows;
    }
    return (Rows(trainSet, "train", trainCount), Rows(testSet, "test", testCount));
}

namespace MLNetAnchor
{
    /// <summary>A row: a file and its label.</summary>
    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }
}
