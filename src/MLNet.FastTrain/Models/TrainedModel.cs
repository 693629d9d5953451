using System.Globalization;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Models;

namespace MLNet.FastTrain.Models;

/// <summary>
/// A trained classifier with what it needs to score new images: the network, its architecture name, the class
/// names and the input normalisation. Saved as one model file.
/// </summary>
public sealed class TrainedModel
{
    /// <summary>Creates the model.</summary>
    public TrainedModel(Module network, string architecture, IReadOnlyList<string> classes, (float[] Mean, float[] Std) normalization, (int Channels, int Height, int Width) inputSize)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        ArgumentNullException.ThrowIfNull(classes);
        Network = network;
        Architecture = architecture;
        Classes = classes.ToArray();
        Normalization = normalization;
        InputSize = inputSize;
        // A trained model scores: batch norm uses its running statistics and dropout is off. Predict never switches the
        // mode back and forth, because threads scoring the same model at once would see each other's switch.
        Network.Eval();
    }

    /// <summary>The network, in inference mode.</summary>
    public Module Network { get; }

    /// <summary>The model-zoo name the network was built from (one of <see cref="Architectures"/>).</summary>
    public string Architecture { get; }

    /// <summary>Class names, in score order.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Per-channel mean and std of [0, 1] pixels.</summary>
    public (float[] Mean, float[] Std) Normalization { get; }

    /// <summary>The image size the model was trained at.</summary>
    public (int Channels, int Height, int Width) InputSize { get; }

    /// <summary>The zoo networks <see cref="CreateNetwork"/> builds, by name.</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["simple", "resnet", "resnet-wide", "resnet9", "resnet18", "resnet34", "resnet18-imagenet"];

    /// <summary>Builds a zoo network by name.</summary>
    public static Module CreateNetwork(string architecture, int channels, int classes, Generator? generator = null) => architecture switch
    {
        "simple" => ModelZoo.Simple(channels, classes, generator),
        "resnet" => ModelZoo.ResNetSmall(channels, classes, generator),
        "resnet-wide" => ModelZoo.ResNetWide(channels, classes, generator),
        "resnet9" => ModelZoo.ResNet9(channels, classes, generator),
        "resnet18" => ModelZoo.ResNet18(channels, classes, generator),
        "resnet34" => ModelZoo.ResNet34(channels, classes, generator),
        "resnet18-imagenet" => ModelZoo.ResNet18ImageNet(channels, classes, generator),
        _ => throw new ArgumentException($"Unknown architecture '{architecture}'; expected {string.Join(", ", Architectures)}.", nameof(architecture)),
    };

    /// <summary>Predictions for every item of a dataset, in order.</summary>
    public IReadOnlyList<ClassificationRow> Predict(ImageDataset data, int batchSize = 256) => Predict(data, null, 0, 0, batchSize);

    /// <summary>
    /// Predictions with a batch transform applied to the normalised images (test-time augmentation); pass k of a
    /// given seed always draws the same augmentations.
    /// </summary>
    public IReadOnlyList<ClassificationRow> Predict(ImageDataset data, Vision.Transforms.BatchTransform? transform, ulong seed, int pass, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Channels != InputSize.Channels)
            throw new ArgumentException($"The model takes {InputSize.Channels}-channel images; the data has {data.Channels}.", nameof(data));
        var loader = new DataLoader(data, batchSize, shuffle: false, seed: seed, normalization: Normalization) { BatchTransform = transform };
        // Images of another size than the model was trained at are brought to it, as they were in training.
        if ((data.Height, data.Width) != (InputSize.Height, InputSize.Width)) loader.ImageSize = (InputSize.Height, InputSize.Width);
        var results = new List<ClassificationRow>(data.Count);
        // Whoever trained the network further put it back in training mode; scoring needs inference mode, and stays in it.
        if (Network.Training) Network.Eval();
        using var noGrad = GradRecorder.NoGrad();
        foreach (var batch in loader.Epoch(pass))
        {
            using var scope = TensorScope.Begin();
            batch.AdoptIntoScope();
            var p = Functional.Softmax(Network.Forward(batch.Images), 1).ToArray();
            int c = Classes.Count;
            for (int i = 0; i < batch.Labels.Length; i++) results.Add(ClassificationRow.FromScore(p.AsSpan(i * c, c).ToArray(), Classes));
        }
        return results;
    }

    /// <summary>Writes the model file (atomically).</summary>
    public void Save(string path)
    {
        var inv = CultureInfo.InvariantCulture;
        ModelFile.Save(path, Network.StateDict(), new Dictionary<string, string>
        {
            ["architecture"] = Architecture,
            ["classes"] = string.Join("\n", Classes),
            ["mean"] = string.Join(",", Normalization.Mean.Select(v => v.ToString("R", inv))),
            ["std"] = string.Join(",", Normalization.Std.Select(v => v.ToString("R", inv))),
            ["input"] = string.Create(inv, $"{InputSize.Channels},{InputSize.Height},{InputSize.Width}"),
        });
    }

    /// <summary>Reads a model file written by <see cref="Save"/>.</summary>
    /// <exception cref="ModelFileException">The file is foreign, damaged, truncated, or lacks the metadata of a trained model.</exception>
    public static TrainedModel Load(string path)
    {
        var (state, meta) = ModelFile.Load(path);
        string Need(string key) => meta.TryGetValue(key, out var v) ? v : throw new ModelFileException(path, ModelFileError.Damaged, $"the metadata entry '{key}' of a trained model is missing.");
        try
        {
            var inv = CultureInfo.InvariantCulture;
            var classes = Need("classes").Split('\n');
            var input = Need("input").Split(',').Select(v => int.Parse(v, inv)).ToArray();
            var mean = Need("mean").Split(',').Select(v => float.Parse(v, inv)).ToArray();
            var std = Need("std").Split(',').Select(v => float.Parse(v, inv)).ToArray();
            // Checked before the network is built, so that a header cannot make us allocate what the file does not hold:
            // the classifier of a net with N classes stores at least N weights, each 4 bytes of the file.
            long stored = state.Values.Sum(t => (long)t.Length);
            if (input.Length != 3 || input[0] is < 1 or > 4 || input[1] is < 1 or > 65535 || input[2] is < 1 or > 65535)
                throw new ModelFileException(path, ModelFileError.Damaged, $"the input size '{Need("input")}' is not channels (1 to 4), height, width.");
            if (classes.Length > stored)
                throw new ModelFileException(path, ModelFileError.Damaged, $"it names {classes.Length} classes but holds only {stored} weights.");
            var network = CreateNetwork(Need("architecture"), input[0], classes.Length);
            network.LoadStateDict(state);
            return new TrainedModel(network, Need("architecture"), classes, (mean, std), (input[0], input[1], input[2]));
        }
        catch (Exception e) when (e is FormatException or IndexOutOfRangeException or ArgumentException or StateDictMismatchException)
        {
            throw new ModelFileException(path, ModelFileError.Damaged, $"its metadata or weights do not describe a trained model ({e.Message}).");
        }
    }
}
