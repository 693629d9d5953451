namespace MLNet.FastTrain.MLNet;

/// <summary>A column of the data does not fit the estimator: missing, or of another type than it needs.</summary>
public sealed class SchemaMismatchException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public SchemaMismatchException(string columnName, string message) : base(message) => ColumnName = columnName;

    /// <summary>The column at fault.</summary>
    public string ColumnName { get; }
}

/// <summary>The data cannot be trained on: empty, one class only, classes that differ between training and validation.</summary>
public sealed class TrainingDataException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public TrainingDataException(string message) : base(message) { }
}

/// <summary>A row's image cannot be decoded.</summary>
public sealed class InvalidImageException : IOException
{
    /// <summary>Creates the exception.</summary>
    public InvalidImageException(long row, string column, string? path, Exception inner)
        : base($"Row {row} of column '{column}'{(path is null ? "" : $" ('{path}')")}: the image cannot be decoded ({inner.Message}). "
            + "Set SkipInvalid to leave such rows out.", inner)
    {
        Row = row;
        ColumnName = column;
        Path = path;
    }

    /// <summary>The row's position in the data view, from 0.</summary>
    public long Row { get; }

    /// <summary>The image column.</summary>
    public string ColumnName { get; }

    /// <summary>The row's file, when the data names it.</summary>
    public string? Path { get; }
}
