namespace MLNet.FastTrain.Onnx;

/// <summary>A file is not a readable ONNX model (damaged, truncated, not protobuf, weights kept elsewhere).</summary>
public sealed class OnnxFormatException(string path, string reason, Exception? inner = null)
    : Exception($"'{path}' is not a readable ONNX model: {reason}", inner)
{
    /// <summary>The file.</summary>
    public string Path { get; } = path;
}

/// <summary>
/// An ONNX model uses operators or attributes the importer has no form for; <see cref="Problems"/> lists every one
/// found, each with its node's name, so one run tells the user all that needs changing.
/// </summary>
public sealed class UnsupportedOnnxModelException(string path, IReadOnlyList<string> problems)
    : Exception($"'{path}' uses what the importer does not support ({problems.Count}):{Environment.NewLine}  "
        + string.Join(Environment.NewLine + "  ", problems))
{
    /// <summary>The file.</summary>
    public string Path { get; } = path;

    /// <summary>One line per unsupported operator or attribute, naming the node.</summary>
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>A model holds a module that has no ONNX form; the message names the module's path and type.</summary>
public sealed class OnnxExportException(string message) : Exception(message);
