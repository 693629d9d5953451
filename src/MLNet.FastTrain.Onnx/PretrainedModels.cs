using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx.Proto;
using MLNet.FastTrain.Vision.Models;

namespace MLNet.FastTrain.Onnx;

/// <summary>A pretrained network fitted to new data, with the input normalisation its weights expect (null: the data's own).</summary>
public sealed record PretrainedNetwork(Module Network, string Architecture, (float[] Mean, float[] Std)? Normalization);

/// <summary>
/// Pretrained networks, by name or from files, fitted to new data. By name: <see cref="ResNet18ImageNet"/>, the
/// ImageNet ResNet-18 of ML.NET's <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> package. From files: an ONNX export
/// or a .ftm model.
/// </summary>
public static class PretrainedModels
{
    /// <summary>The name of the ImageNet ResNet-18 backbone.</summary>
    public const string ResNet18ImageNet = "resnet18-imagenet";

    /// <summary>The NuGet package that carries it.</summary>
    public const string ResNet18Package = "Microsoft.ML.DnnImageFeaturizer.ResNet18";

    private static readonly string[] ModelPath = ["DnnImageModels", "ResNet18Onnx", "ResNet18.onnx"];
    private static readonly string[] PreprocessPath = ["DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx"];

    /// <summary>True when <paramref name="model"/> names a pretrained network rather than a file.</summary>
    public static bool IsName(string model) => model == ResNet18ImageNet;

    /// <summary>
    /// Loads a pretrained network, by name or from <paramref name="pathOrName"/>, and fits it to the data: grey images
    /// get a first convolution summed over its colour channels, and a new head replaces the old one (or is added to a
    /// headless body) unless the file's labels are <paramref name="classes"/>. Images smaller than the network's
    /// strides allow are refused with the minimum size.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file, or the package of a named backbone, is not there.</exception>
    public static PretrainedNetwork LoadForFineTuning(string pathOrName, int channels, IReadOnlyList<string> classes, ulong seed, (int Height, int Width)? imageSize = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathOrName);
        ArgumentNullException.ThrowIfNull(classes);
        if (classes.Count < 2) throw new ArgumentException($"Fine-tuning needs at least two classes; the data has {classes.Count}.", nameof(classes));
        Module network;
        string architecture;
        IReadOnlyList<string>? known = null;
        (float[] Mean, float[] Std)? normalization = null;
        if (IsName(pathOrName))
        {
            (network, normalization) = LoadResNet18ImageNet();
            architecture = ResNet18ImageNet;
        }
        else
        {
            if (!File.Exists(pathOrName)) throw new FileNotFoundException($"The model file '{pathOrName}' does not exist.", pathOrName);
            if (pathOrName.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            {
                var imported = OnnxImporter.Load(pathOrName);
                (network, architecture, known) = (imported.Network, imported.Architecture, imported.Classes);
            }
            else
            {
                var trained = TrainedModel.Load(pathOrName);
                (network, architecture, known) = (trained.Network, trained.Architecture, trained.Classes);
                if (architecture == ResNet18ImageNet) normalization = trained.Normalization;
            }
        }
        if (normalization is var (mean, std) && channels == 1 && mean.Length == 3)
            normalization = ([mean.Average()], [std.Average()]);
        DifferentialFineTune.AdaptInputChannels(network, channels);
        if (!network.NamedModules().Any(kv => kv.Value is Linear))
        {
            if (network is not Sequential body) throw new ArgumentException($"'{pathOrName}' has no classifier and is not a sequence of layers a head can be added to.", nameof(pathOrName));
            int features = body.NamedModules().Select(kv => kv.Value).OfType<BatchNorm2d>().Last().NumFeatures;
            body.Append("fc", new Linear(features, classes.Count, generator: new Generator(seed)));
        }
        else if (known is null || !known.SequenceEqual(classes)) DifferentialFineTune.ReplaceHead(network, classes.Count, new Generator(seed));
        if (imageSize is var (h, w) && network is Sequential) ModelZoo.CheckInputSize(network, channels, h, w, architecture);
        return new PretrainedNetwork(network, architecture, normalization);
    }

    /// <summary>
    /// The ImageNet ResNet-18 body with the input normalisation its weights expect, for RGB pixels in [0, 1]. The
    /// package's preprocessing (RGB 0–255 reordered to BGR, minus a mean image) is folded in: the first convolution's
    /// input channels are reordered to RGB, and the normalisation is the mean image's channel means / 255 with a
    /// standard deviation of 1/255 (the per-pixel mean image itself exists only at 224 × 224).
    /// </summary>
    /// <exception cref="FileNotFoundException">The package is not in the application's folder nor in the NuGet package folder.</exception>
    public static (Sequential Body, (float[] Mean, float[] Std) Normalization) LoadResNet18ImageNet() => LoadResNet18ImageNet(SearchRoots());

    internal static (Sequential Body, (float[] Mean, float[] Std) Normalization) LoadResNet18ImageNet(IEnumerable<string> roots)
    {
        var root = LocateResNet18(roots)
            ?? throw new FileNotFoundException($"The pretrained backbone {ResNet18ImageNet} comes from the NuGet package {ResNet18Package}: add <PackageReference Include=\"{ResNet18Package}\" Version=\"0.23.1\" /> "
                + $"to the application (it copies {string.Join('/', ModelPath)} into the build output), or restore it into the NuGet package folder.");
        var imported = OnnxImporter.Load(Path.Combine([root, .. ModelPath]));
        if (imported.Architecture != ResNet18ImageNet || imported.Network is not Sequential body)
            throw new UnsupportedOnnxModelException(Path.Combine([root, .. ModelPath]), ["the graph is not the ResNet-18 layout this package is known to ship"]);
        var means = ChannelMeansBgr(Path.Combine([root, .. PreprocessPath]));
        // BGR → RGB: swap the first convolution's input channels 0 and 2.
        var conv1 = (Conv2d)body.Child("conv1");
        var weight = conv1.Weight.AsSpan();
        int plane = conv1.KernelSize.H * conv1.KernelSize.W;
        for (int o = 0; o < conv1.OutChannels; o++)
        {
            var blue = weight.Slice((o * 3 + 0) * plane, plane);
            var red = weight.Slice((o * 3 + 2) * plane, plane);
            for (int i = 0; i < plane; i++) (blue[i], red[i]) = (red[i], blue[i]);
        }
        float[] mean = [means[2] / 255f, means[1] / 255f, means[0] / 255f];
        float[] std = [1 / 255f, 1 / 255f, 1 / 255f];
        return (body, (mean, std));
    }

    /// <summary>Where the package's DnnImageModels folder sits: the application's folder first, then the NuGet package folder (newest version).</summary>
    public static string? LocateResNet18() => LocateResNet18(SearchRoots());

    private static string? LocateResNet18(IEnumerable<string> roots) =>
        roots.FirstOrDefault(c => File.Exists(Path.Combine([c, .. ModelPath])) && File.Exists(Path.Combine([c, .. PreprocessPath])));

    private static List<string> SearchRoots()
    {
        var candidates = new List<string> { AppContext.BaseDirectory };
        string? packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages))
        {
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (home.Length > 0) packages = Path.Combine(home, ".nuget", "packages");
        }
        var versions = packages is null ? null : Path.Combine(packages, ResNet18Package.ToLowerInvariant());
        if (versions is not null && Directory.Exists(versions))
        {
            candidates.AddRange(Directory.GetDirectories(versions)
                .OrderByDescending(d => Version.TryParse(Path.GetFileName(d), out var v) ? v : new Version(0, 0))
                .Select(d => Path.Combine(d, "tools")));
        }
        return candidates;
    }

    /// <summary>The per-channel means (in B, G, R order) of the preprocessing graph's mean image.</summary>
    private static float[] ChannelMeansBgr(string path)
    {
        var proto = OnnxSerializer.Read(File.ReadAllBytes(path));
        var mean = proto.Graph.Initializers.FirstOrDefault(t => t.Dims.Length == 4 && t.Dims[0] == 1 && t.Dims[1] == 3 && t.FloatData.Length == t.ElementCount)
            ?? throw new OnnxFormatException(path, "it holds no [1, 3, H, W] mean image.");
        int plane = (int)(mean.Dims[2] * mean.Dims[3]);
        return [.. Enumerable.Range(0, 3).Select(c => (float)mean.FloatData.AsSpan(c * plane, plane).ToArray().Average(v => (double)v))];
    }
}
