using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>What <c>--model</c> names: a zoo network, or a model file (ONNX or our own) to fine-tune.</summary>
internal static class ModelSource
{
    public static IReadOnlyList<string> ZooNames => TrainedModel.Architectures;

    public const string Description = "resnet9 (default: a ResNet-9-style net for small images), simple, resnet, resnet-wide, resnet18, resnet34, resnet18-imagenet (ML.NET's ImageNet ResNet-18, pretrained), or a model file to fine-tune (FILE.onnx, FILE.ftm)";

    public static bool IsFile(string model) =>
        model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || model.EndsWith(".ftm", StringComparison.OrdinalIgnoreCase);

    /// <summary>A file to fine-tune, or a pretrained backbone by name (resnet18-imagenet): trained with the whole recipe.</summary>
    public static bool IsPretrained(string model) => IsFile(model) || PretrainedModels.IsName(model);

    /// <summary>A bad value is a usage error (exit 2); a named file that is missing or unreadable is a user error later.</summary>
    public static void Validate(string model)
    {
        if (!ZooNames.Contains(model) && !IsFile(model))
            throw new ArgumentException($"--model '{model}' is neither a zoo network ({string.Join(", ", ZooNames)}) nor an .onnx or .ftm file.");
    }

    /// <summary>
    /// Loads a pretrained network from a file and fits it to the data: grey images get a first convolution summed over
    /// its colour channels, and a new head replaces the old one unless the file's labels are the data's.
    /// </summary>
    public static PretrainedNetwork LoadPretrained(string path, ImageDataset train, ulong seed, (int Height, int Width)? size) =>
        PretrainedModels.LoadForFineTuning(path, train.Channels, train.Classes, seed, size);

    /// <summary>A scoring-ready model from a .ftm file, or from an .onnx file that carries labels and normalisation.</summary>
    public static TrainedModel LoadTrained(string path)
    {
        if (!path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return TrainedModel.Load(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"The model file '{path}' does not exist.", path);
        var imported = OnnxImporter.Load(path);
        if (imported.Classes is null || imported.Normalization is null)
            throw new InvalidOperationException($"'{path}' lacks the label names or the input normalisation of a classifier exported by fasttrain; fine-tune it with train --model first.");
        return imported.ToTrainedModel();
    }
}
