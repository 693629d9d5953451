namespace MLNet.FastTrain.Engine;

/// <summary>Thrown when tensor shapes do not fit an operation. The message names every shape involved.</summary>
public sealed class ShapeMismatchException : ArgumentException
{
    /// <summary>Creates the exception with a message that already names the shapes.</summary>
    public ShapeMismatchException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public ShapeMismatchException() { }

    /// <summary>Creates the exception with an inner exception.</summary>
    public ShapeMismatchException(string message, Exception inner) : base(message, inner) { }

    internal static ShapeMismatchException For(string op, string what, ReadOnlySpan<int> a, ReadOnlySpan<int> b) =>
        new($"{op}: {what}: {ShapeText.Format(a)} and {ShapeText.Format(b)}.");
}

/// <summary>Thrown while anomaly detection is on, at the first operation that produced a NaN or an infinity.</summary>
public sealed class NonFiniteValueException : ArithmeticException
{
    /// <summary>Creates the exception.</summary>
    public NonFiniteValueException(string operation, bool inBackward, ReadOnlySpan<int> shape, long index, double value)
        : base($"{(inBackward ? "backward of " : "")}{operation} produced {value} at flat index {index} of a tensor of shape {ShapeText.Format(shape)}.")
    {
        Operation = operation;
        InBackward = inBackward;
    }

    /// <summary>Creates the exception for a backward rule whose helper operation produced the value.</summary>
    internal NonFiniteValueException(string operation, ReadOnlySpan<int> shape, NonFiniteValueException inner)
        : base($"backward of {operation} (output shape {ShapeText.Format(shape)}) produced a non-finite gradient: {inner.Message}", inner)
    {
        Operation = operation;
        InBackward = true;
    }

    /// <summary>Creates the exception.</summary>
    public NonFiniteValueException() { Operation = ""; }

    /// <summary>Creates the exception.</summary>
    public NonFiniteValueException(string message) : base(message) { Operation = ""; }

    /// <summary>Creates the exception.</summary>
    public NonFiniteValueException(string message, Exception inner) : base(message, inner) { Operation = ""; }

    /// <summary>The name of the operation that produced the value.</summary>
    public string Operation { get; }

    /// <summary>True when the value came out of the operation's backward pass.</summary>
    public bool InBackward { get; }
}

internal static class ShapeText
{
    public static string Format(ReadOnlySpan<int> shape)
    {
        var parts = new string[shape.Length];
        for (int i = 0; i < shape.Length; i++) parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "[" + string.Join(", ", parts) + "]";
    }
}
