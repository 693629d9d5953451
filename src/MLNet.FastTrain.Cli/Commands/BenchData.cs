using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>
/// Fashion-MNIST for the benchmark, as the reference script loads it: pixels scaled to [0, 1], then standardised
/// with the training set's mean and standard deviation.
/// </summary>
internal sealed class BenchData
{
    private BenchData(Tensor train, int[] trainLabels, Tensor test, string source)
    {
        Train = train;
        TrainLabels = trainLabels;
        Test = test;
        Source = source;
    }

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
        string[] candidates =
        [
            Environment.GetEnvironmentVariable("FMNIST_DIR") ?? "",
            "/usr/share/datasets/fashion-mnist",
            Path.Combine(FindRepoRoot() ?? "", "data", "fashion-mnist-mini"),
        ];
        string dir = candidates.FirstOrDefault(d => d.Length > 0 && File.Exists(Path.Combine(d, "train-images-idx3-ubyte.gz")))
            ?? throw new DirectoryNotFoundException("No Fashion-MNIST found: set FMNIST_DIR or install Debian's dataset-fashion-mnist.");
        var (trainDims, trainBytes) = IdxFile.ReadBytes(Path.Combine(dir, "train-images-idx3-ubyte.gz"));
        var (_, labelBytes) = IdxFile.ReadBytes(Path.Combine(dir, "train-labels-idx1-ubyte.gz"));
        var (testDims, testBytes) = IdxFile.ReadBytes(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"));

        double sum = 0, sq = 0;
        foreach (byte b in trainBytes) { double v = b / 255.0; sum += v; sq += v * v; }
        double mean = sum / trainBytes.Length;
        double std = Math.Sqrt((sq - trainBytes.Length * mean * mean) / (trainBytes.Length - 1));
        return new BenchData(ToTensor(trainBytes, trainDims, mean, std), labelBytes.Select(b => (int)b).ToArray(), ToTensor(testBytes, testDims, mean, std), dir);
    }

    private static Tensor ToTensor(byte[] bytes, int[] dims, double mean, double std)
    {
        var t = Tensor.Zeros(dims[0], 1, dims[1], dims[2]);
        var s = t.AsSpan();
        float scale = (float)(1 / (255.0 * std)), shift = (float)(-mean / std);
        for (int i = 0; i < s.Length; i++) s[i] = bytes[i] * scale + shift;
        return t;
    }

    private static string? FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MLNet.FastTrain.sln"))) dir = dir.Parent;
        return dir?.FullName;
    }
}
