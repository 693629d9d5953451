using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>
/// Fashion-MNIST for the benchmark, as the reference script loads it: pixels scaled to [0, 1], then standardised
/// with the training set's mean and standard deviation.
/// </summary>
internal sealed class BenchData
{
    private BenchData(ImageDataset dataset, Tensor train, int[] trainLabels, Tensor test, string source)
    {
        Dataset = dataset;
        Train = train;
        TrainLabels = trainLabels;
        Test = test;
        Source = source;
    }

    /// <summary>The training images as a dataset, for timing the loader.</summary>
    public ImageDataset Dataset { get; }

    public Tensor Train { get; }

    public int[] TrainLabels { get; }

    public Tensor Test { get; }

    public string Source { get; }

    /// <summary>
    /// The full set from FMNIST_DIR or Debian's dataset-fashion-mnist when present, else the subset in the
    /// repository's data.
    /// </summary>
    public static BenchData Load()
    {
        string dir = new[] { Environment.GetEnvironmentVariable("FMNIST_DIR") ?? "", CliSupport.DebianFashionMnist }
            .FirstOrDefault(d => d.Length > 0 && IdxDataset.IsIdxFolder(d)) ?? CliSupport.BundledData();
        var (train, test) = IdxDataset.Load(dir);
        var (mean, std) = train.ChannelStatistics();
        return new BenchData(train, ToTensor(train, mean[0], std[0]), train.Labels.ToArray(), ToTensor(test, mean[0], std[0]), dir);
    }

    private static Tensor ToTensor(ImageDataset data, float mean, float std)
    {
        var t = Tensor.Zeros(data.Count, 1, data.Height, data.Width);
        var s = t.AsSpan();
        float scale = 1 / (255f * std), shift = -mean / std;
        for (int i = 0; i < data.Count; i++)
        {
            var pixels = data.Pixels(i);
            var dst = s.Slice(i * data.ImageSize, data.ImageSize);
            for (int p = 0; p < pixels.Length; p++) dst[p] = pixels[p] * scale + shift;
        }
        return t;
    }
}
