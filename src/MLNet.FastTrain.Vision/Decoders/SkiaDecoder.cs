using System.Runtime.InteropServices;
using SkiaSharp;

namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// Images decoded by Skia through SkiaSharp 2.88.9: libjpeg-turbo (bit for bit as its djpeg, 1/2, 1/4 and 1/8 scales
/// included), libwebp and Skia's GIF reader, all fuzzed upstream. <see cref="ImageDecoder"/> sends it JPEG (where the
/// native library loads), WebP and GIF. The size is checked against the limits from the header, before the pixels are
/// allocated; the EXIF orientation is applied; alpha is dropped as by our decoders (the stored colours, not
/// composited).
/// </summary>
public static class SkiaDecoder
{
    /// <summary>Whether Skia's native library loads here (asked once).</summary>
    public static bool IsAvailable => Available.Value;

    private static readonly Lazy<bool> Available = new(() =>
    {
        try
        {
            return SkiaSharpVersion.Native.Major > 0;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException or BadImageFormatException)
        {
            return false;
        }
    });

    /// <summary>Whether the data is a WebP file (a RIFF container of form type WEBP).</summary>
    public static bool IsWebP(ReadOnlySpan<byte> data) => data.Length >= 12 && data[..4].SequenceEqual("RIFF"u8) && data[8..12].SequenceEqual("WEBP"u8);

    /// <summary>Whether the data is a GIF file (GIF87a or GIF89a).</summary>
    public static bool IsGif(ReadOnlySpan<byte> data) => data.Length >= 6 && (data[..6].SequenceEqual("GIF87a"u8) || data[..6].SequenceEqual("GIF89a"u8));

    /// <summary>Decodes the bytes of any format Skia reads: gray stays gray, everything else is RGB.</summary>
    /// <param name="data">The file's bytes.</param>
    /// <param name="name">Names the data in errors.</param>
    /// <param name="limits">Largest image accepted (checked on the file's full size).</param>
    /// <param name="minSide">
    /// When positive, a JPEG comes out at the smallest of Skia's DCT scales (1/2, 1/4, 1/8) that keeps both sides at
    /// least this long, as <see cref="JpegDecoder.DecodeAtLeast"/> (for comparing the two).
    /// </param>
    /// <exception cref="InvalidImageException">Skia cannot read the data, it is truncated, or it is beyond the limits.</exception>
    public static DecodedImage Decode(byte[] data, string name, DecoderLimits? limits = null, int minSide = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(minSide);
        limits ??= DecoderLimits.Default;
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var opened)
            ?? throw new InvalidImageException(name, opened == SKCodecResult.IncompleteInput ? "it is truncated (its header is incomplete)." : $"Skia cannot read it ({opened}).");
        var info = codec.Info;
        limits.Check(name, info.Width, info.Height);
        // Every 8×8 JPEG block costs at least a bit: a frame the file cannot fill is refused before allocating for it.
        if (codec.EncodedFormat == SKEncodedImageFormat.Jpeg && (long)info.Width * info.Height > 512L * data.Length)
            throw new InvalidImageException(name, $"its {info.Width}×{info.Height} frame needs more data than the file's {data.Length} bytes can hold.");
        var size = new SKSizeI(info.Width, info.Height);
        int reduction = 1;
        foreach (int d in (ReadOnlySpan<int>)[8, 4, 2])
        {
            if (minSide <= 0 || codec.EncodedFormat != SKEncodedImageFormat.Jpeg) break;
            // A scale counts only when Skia gives its exact size (the file's sides divided by d, rounded up), as
            // DecodedImage.Reduction promises; a scale it cannot do comes back at another size and is passed over.
            var scaled = codec.GetScaledDimensions(1f / d);
            bool exact = scaled.Width == (info.Width + d - 1) / d && scaled.Height == (info.Height + d - 1) / d;
            if (exact && scaled.Width >= minSide && scaled.Height >= minSide) { (size, reduction) = (scaled, d); break; }
        }
        bool gray = info.ColorType == SKColorType.Gray8;
        var target = new SKImageInfo(size.Width, size.Height, gray ? SKColorType.Gray8 : SKColorType.Rgba8888, gray ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
        var pixels = new byte[(long)target.Width * target.Height * target.BytesPerPixel];
        var handle = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        SKCodecResult result;
        try
        {
            result = codec.GetPixels(target, handle.AddrOfPinnedObject());
        }
        finally
        {
            handle.Free();
        }
        if (result == SKCodecResult.IncompleteInput) throw new InvalidImageException(name, "it is truncated (the image data ends early).");
        // libjpeg-turbo reports a progressive JPEG cut short as invalid input: a JPEG without its end marker is truncated.
        if (result != SKCodecResult.Success && codec.EncodedFormat == SKEncodedImageFormat.Jpeg && data.AsSpan().LastIndexOf([(byte)0xFF, (byte)0xD9]) < 0)
            throw new InvalidImageException(name, $"it is truncated (the file ends before its end-of-image marker; Skia: {result}).");
        if (result != SKCodecResult.Success) throw new InvalidImageException(name, $"Skia could not decode it ({result}).");
        if (!gray)
        {
            var rgb = new byte[(long)target.Width * target.Height * 3];
            for (long i = 0, n = (long)target.Width * target.Height; i < n; i++)
            {
                rgb[3 * i] = pixels[4 * i];
                rgb[3 * i + 1] = pixels[4 * i + 1];
                rgb[3 * i + 2] = pixels[4 * i + 2];
            }
            pixels = rgb;
        }
        var image = new DecodedImage(target.Width, target.Height, gray ? 1 : 3, pixels) { Reduction = reduction, SourceWidth = info.Width, SourceHeight = info.Height };
        // Skia reports the EXIF orientation and leaves applying it to us; SKEncodedOrigin numbers as EXIF does.
        return DecodedImage.Oriented(image, (int)codec.EncodedOrigin is >= 1 and <= 8 and var o ? o : 1);
    }
}
