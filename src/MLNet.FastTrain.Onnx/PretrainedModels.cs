using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Models;

namespace MLNet.FastTrain.Onnx;

/// <summary>Pretrained networks read from files (an ONNX export or a .ftm model) and fitted to new data.</summary>
public static class PretrainedModels
{
    /// <summary>
    /// Loads a pretrained network from <paramref name="path"/> and fits it to the data: grey images get a first
    /// convolution summed over its colour channels, and a new head replaces the old one unless the file's labels are
    /// <paramref name="classes"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static (Module Network, string Architecture) LoadForFineTuning(string path, int channels, IReadOnlyList<string> classes, ulong seed)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(classes);
        if (!File.Exists(path)) throw new FileNotFoundException($"The model file '{path}' does not exist.", path);
        Module network;
        string architecture;
        IReadOnlyList<string>? known;
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var imported = OnnxImporter.Load(path);
            (network, architecture, known) = (imported.Network, imported.Architecture, imported.Classes);
        }
        else
        {
            var trained = TrainedModel.Load(path);
            (network, architecture, known) = (trained.Network, trained.Architecture, trained.Classes);
        }
        DifferentialFineTune.AdaptInputChannels(network, channels);
        if (known is null || !known.SequenceEqual(classes)) DifferentialFineTune.ReplaceHead(network, classes.Count, new Generator(seed));
        return (network, architecture);
    }
}
