using Microsoft.ML;
using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Encoders;

namespace MLNet.FastTrain.MLNet.Tests;

/// <summary>One row of ML.NET's image-classification tutorial: a file and its label.</summary>
public sealed class ImageRow
{
    public string ImagePath { get; set; } = "";

    public string Label { get; set; } = "";
}

/// <summary>What a prediction engine returns.</summary>
public sealed class Prediction
{
    public string PredictedLabel { get; set; } = "";

    public float[] Score { get; set; } = [];
}

/// <summary>
/// The bundled Fashion-MNIST subset written as a folder of PNG files with a table of paths and labels, as an
/// ML.NET user's data would be: the first <see cref="TrainCount"/> training images and the first
/// <see cref="TestCount"/> test images.
/// </summary>
public sealed class ImageFolder : IDisposable
{
    public const int TrainCount = 400;
    public const int TestCount = 100;

    public static readonly string[] Names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"];

    public ImageFolder()
    {
        Directory = Path.Combine(Path.GetTempPath(), "fasttrain-mlnet-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        Train = Write("train", TrainCount);
        Test = Write("t10k", TestCount);
    }

    public string Directory { get; }

    public IReadOnlyList<ImageRow> Train { get; }

    public IReadOnlyList<ImageRow> Test { get; }

    private List<ImageRow> Write(string split, int count)
    {
        var (images, labels, _) = FashionMnistMini.Load(split);
        var rows = new List<ImageRow>();
        for (int i = 0; i < count; i++)
        {
            string name = $"{split}-{i:D4}.png";
            PngEncoder.Save(Path.Combine(Directory, name), images.AsSpan(i * 784, 784), 28, 28, 1);
            rows.Add(new ImageRow { ImagePath = name, Label = Names[labels[i]] });
        }
        return rows;
    }

    /// <summary>The tutorial's pipeline front: label to key, file to raw bytes in column "Image".</summary>
    public IEstimator<ITransformer> Front(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadRawImageBytes("Image", Directory, "ImagePath"));

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
    }
}
