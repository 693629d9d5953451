using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;

namespace MLNet.FastTrain.MLNet;

/// <summary>The row a raw-bytes column is copied into before decoding.</summary>
public sealed class EncodedImageRow
{
    /// <summary>The encoded image.</summary>
    [VectorType]
    public byte[]? FastTrainImageBytes { get; set; }
}

/// <summary>The decoded image.</summary>
public sealed class DecodedImageRow
{
    /// <summary>The image, as ML.NET's image type.</summary>
    public MLImage? FastTrainImage { get; set; }
}

/// <summary>
/// Decodes raw image bytes to ML.NET's <see cref="MLImage"/> (SkiaSharp: JPEG, PNG, BMP, GIF, WebP, ...). ML.NET's
/// own <c>LoadImages</c> reads only paths, so this is the one mapping of ours a fitted model holds; it is saved by its
/// contract name and found again when a model is loaded in a process that references this package.
/// </summary>
[CustomMappingFactoryAttribute(ContractName)]
public sealed class DecodeImageMapping : CustomMappingFactory<EncodedImageRow, DecodedImageRow>
{
    /// <summary>The contract name stored in saved models.</summary>
    public const string ContractName = "MLNet.FastTrain.DecodeImage";

    /// <summary>The column the bytes are copied to.</summary>
    internal const string InputColumn = nameof(EncodedImageRow.FastTrainImageBytes);

    /// <summary>The decoded image's column.</summary>
    internal const string OutputColumn = nameof(DecodedImageRow.FastTrainImage);

    // A custom mapping's output type must be known to ML.NET's type manager before its schema is built, which at
    // load time happens right after this factory is created.
    static DecodeImageMapping() => EnsureImageTypeRegistered();

    /// <summary>Registers <see cref="MLImage"/> as a data-view type once per process.</summary>
    internal static void EnsureImageTypeRegistered()
    {
        lock (Gate)
        {
            if (s_registered) return;
            DataViewTypeManager.Register(new ImageDataViewType(), typeof(MLImage));
            s_registered = true;
        }
    }

    private static readonly object Gate = new();
    private static bool s_registered;

    /// <inheritdoc/>
    public override Action<EncodedImageRow, DecodedImageRow> GetMapping() => Decode;

    /// <summary>Decodes one row; an empty or undecodable value throws <see cref="InvalidDataException"/>.</summary>
    internal static void Decode(EncodedImageRow input, DecodedImageRow output)
    {
        var bytes = input.FastTrainImageBytes;
        if (bytes is null || bytes.Length == 0) throw new InvalidDataException("the value is empty");
        output.FastTrainImage = Open(bytes);
    }

    /// <summary>Like <see cref="Decode"/>, but an undecodable value becomes a 1 × 1 black image (for reading training data, whose rows are checked apart).</summary>
    internal static void DecodeOrPlaceholder(EncodedImageRow input, DecodedImageRow output)
    {
        var bytes = input.FastTrainImageBytes;
        output.FastTrainImage = bytes is { Length: > 0 } && TryOpen(bytes, out var image) ? image : MLImage.CreateFromPixels(1, 1, MLPixelFormat.Bgra32, new byte[4]);
    }

    /// <summary>Opens the bytes if they hold an image.</summary>
    internal static bool TryOpen(byte[] bytes, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out MLImage? image)
    {
        image = null;
        if (bytes.Length == 0) return false;
        try { image = Open(bytes); return true; }
        catch (InvalidDataException) { return false; }
    }

    /// <summary>Why the bytes are not an image, or null when they are one.</summary>
    internal static Exception? Check(byte[] bytes)
    {
        if (bytes.Length == 0) return new InvalidDataException("the value is empty");
        try { using var image = Open(bytes); return null; }
        catch (InvalidDataException e) { return e; }
    }

    /// <summary>Opens encoded bytes as an image; a format SkiaSharp cannot read throws <see cref="InvalidDataException"/>.</summary>
    internal static MLImage Open(byte[] bytes)
    {
        try
        {
            return MLImage.CreateFromStream(new MemoryStream(bytes, writable: false));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or NotSupportedException)
        {
            throw new InvalidDataException($"not an image this decoder reads ({bytes.Length} bytes starting {Convert.ToHexString(bytes.AsSpan(0, Math.Min(8, bytes.Length)))})", e);
        }
    }
}
