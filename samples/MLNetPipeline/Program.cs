// ML.NET's image-classification tutorial, with SGD with warm restarts as the trainer: a table of image paths and
// labels, LoadRawImageBytes, the trainer (LR finder first), Evaluate, Save, and a prediction engine on the loaded
// model. The bundled Fashion-MNIST subset is first written out as PNG files and a TSV, the shape of a user's data.
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Encoders;
using MLNetPipeline;

string data = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "../../../../../data/fashion-mnist-mini");
string folder = Path.Combine(Path.GetTempPath(), "fasttrain-mlnet-sample");
string trainTsv = WriteFolder(data, folder, "train", train: true);
string testTsv = WriteFolder(data, folder, "test", train: false);

var ml = new MLContext(seed: 1);
ml.Log += (_, e) => { if (e.Source.StartsWith("MLNet.FastTrain", StringComparison.Ordinal) && e.Kind != Microsoft.ML.Runtime.ChannelMessageKind.Trace) Console.WriteLine(e.RawMessage); };
IDataView train = ml.Data.LoadFromTextFile<ImageRow>(trainTsv, hasHeader: true);
IDataView test = ml.Data.LoadFromTextFile<ImageRow>(testTsv, hasHeader: true);

var trainer = ml.MulticlassClassification.Trainers.Sgdr(labelColumnName: "Label", featureColumnName: "Image");
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadRawImageBytes("Image", folder, "ImagePath"))
    .Append(trainer)
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var model = pipeline.Fit(train);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"learning rate found: {trainer.LearningRate:G3}"));

var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"macro accuracy {metrics.MacroAccuracy:P1}, micro accuracy {metrics.MicroAccuracy:P1}, log loss {metrics.LogLoss:F3}"));

string zip = Path.Combine(folder, "model.zip");
ml.Model.Save(model, train.Schema, zip);
var loaded = new MLContext().Model.Load(zip, out _);
var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
var first = File.ReadLines(testTsv).Skip(1).First().Split('\t');
var prediction = engine.Predict(new ImageRow { ImagePath = first[0], Label = first[1] });
Console.WriteLine($"{first[0]}: predicted {prediction.PredictedLabel} (labelled {first[1]}), p = {prediction.Score.Max():F3}");

// The IDX subset as PNG files and a table "ImagePath<TAB>Label".
static string WriteFolder(string idx, string folder, string name, bool train)
{
    Directory.CreateDirectory(folder);
    var (trainSet, validSet) = IdxDataset.Load(idx);
    var set = train ? trainSet : validSet;
    string tsv = Path.Combine(folder, name + ".tsv");
    using var writer = new StreamWriter(tsv);
    writer.WriteLine("ImagePath\tLabel");
    for (int i = 0; i < set.Count; i++)
    {
        string file = $"{name}-{i:D4}.png";
        PngEncoder.Save(Path.Combine(folder, file), set.Pixels(i), set.Width, set.Height, set.Channels);
        writer.WriteLine($"{file}\t{set.Classes[set.LabelOf(i)]}");
    }
    return tsv;
}

namespace MLNetPipeline
{
    /// <summary>A row of the table.</summary>
    public sealed class ImageRow
    {
        [LoadColumn(0)]
        public string ImagePath { get; set; } = "";

        [LoadColumn(1)]
        public string Label { get; set; } = "";
    }

    /// <summary>What the model returns.</summary>
    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";

        public float[] Score { get; set; } = [];
    }
}
