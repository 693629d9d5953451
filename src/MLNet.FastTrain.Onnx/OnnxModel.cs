using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Models;

namespace MLNet.FastTrain.Onnx;

/// <summary>What an ONNX file held: the network with its weights and what the file says about its inputs and outputs.</summary>
public sealed class OnnxModel
{
    /// <summary>The architecture name of a network that is not a zoo network: it stays an <see cref="OnnxGraphModule"/>.</summary>
    public const string GraphArchitecture = "onnx-graph";

    internal OnnxModel(Module network, string architecture, IReadOnlyList<string>? classes, (float[] Mean, float[] Std)? normalization,
        bool endsWithSoftmax, (int Channels, int? Height, int? Width) input, (int, int, int)? trainedSize, int? outputs, long opset, string producer)
    {
        Network = network;
        Architecture = architecture;
        Classes = classes;
        Normalization = normalization;
        EndsWithSoftmax = endsWithSoftmax;
        Input = input;
        TrainedSize = trainedSize;
        OutputCount = outputs;
        Opset = opset;
        Producer = producer;
    }

    /// <summary>The trainable network (a zoo network when recognised, else the graph), without a final softmax.</summary>
    public Module Network { get; }

    /// <summary>One of TrainedModel.Architectures when the graph is that zoo network; else <see cref="GraphArchitecture"/>.</summary>
    public string Architecture { get; }

    /// <summary>Label names from the metadata entry "labels", when present.</summary>
    public IReadOnlyList<string>? Classes { get; }

    /// <summary>The per-channel normalisation found at the start of the graph, when present.</summary>
    public (float[] Mean, float[] Std)? Normalization { get; }

    /// <summary>Whether the file's graph ended in a softmax (left out of <see cref="Network"/>).</summary>
    public bool EndsWithSoftmax { get; }

    /// <summary>The input's channels, and its height and width when fixed.</summary>
    public (int Channels, int? Height, int? Width) Input { get; }

    /// <summary>The image size the model was trained at, when the file records it.</summary>
    public (int Channels, int Height, int Width)? TrainedSize { get; }

    /// <summary>The number of outputs of the last linear layer (the classes), when there is one.</summary>
    public int? OutputCount { get; }

    /// <summary>The default-domain operator set the file imports.</summary>
    public long Opset { get; }

    /// <summary>The tool that wrote the file.</summary>
    public string Producer { get; }

    /// <summary>
    /// A scoring-ready classifier: needs label names (from the file or <paramref name="classes"/>) and a normalisation
    /// (from the graph or <paramref name="normalization"/>).
    /// </summary>
    public TrainedModel ToTrainedModel(IReadOnlyList<string>? classes = null, (float[] Mean, float[] Std)? normalization = null, (int Height, int Width)? imageSize = null)
    {
        var names = classes ?? Classes ?? throw new InvalidOperationException("The ONNX model has no 'labels' metadata; pass the class names.");
        if (OutputCount is int k && k != names.Count)
            throw new ArgumentException($"The network has {k} outputs but {names.Count} class names were given.", nameof(classes));
        var norm = normalization ?? Normalization ?? throw new InvalidOperationException("The ONNX graph does not start with a normalisation; pass the per-channel mean and std.");
        var (h, w) = imageSize ?? (TrainedSize is { } t ? (t.Height, t.Width) : (Input.Height ?? 224, Input.Width ?? 224));
        return new TrainedModel(Network, Architecture, names, norm, (Input.Channels, h, w));
    }
}
