using System.Runtime.InteropServices;
using SkiaSharp;

namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// WebP (lossy and lossless) and GIF (the first frame), decoded by Skia through SkiaSharp 2.88.9: libwebp and
/// Skia's GIF reader, both fuzzed upstream. Any format Skia reads can be decoded here (the bench compares it with our
/// own decoders); <see cref="ImageDecoder"/> sends it only the formats ours do not read. The size is checked against
/// the limits from the header, before the pixels are allocated; alpha is dropped as by our decoders (the stored
/// colours, not composited).
/// </summary>
public static class SkiaDecoder
{
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
        var size = new SKSizeI(info.Width, info.Height);
        foreach (int d in (ReadOnlySpan<int>)[8, 4, 2])
        {
            if (minSide <= 0 || codec.EncodedFormat != SKEncodedImageFormat.Jpeg) break;
            var scaled = codec.GetScaledDimensions(1f / d);
            if (scaled.Width >= minSide && scaled.Height >= minSide) { size = scaled; break; }
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
        if (result != SKCodecResult.Success) throw new InvalidImageException(name, $"Skia could not decode it ({result}).");
        if (gray) return new DecodedImage(target.Width, target.Height, 1, pixels);
        var rgb = new byte[(long)target.Width * target.Height * 3];
        for (long i = 0, n = (long)target.Width * target.Height; i < n; i++)
        {
            rgb[3 * i] = pixels[4 * i];
            rgb[3 * i + 1] = pixels[4 * i + 1];
            rgb[3 * i + 2] = pixels[4 * i + 2];
        }
        return new DecodedImage(target.Width, target.Height, 3, rgb);
    }
}
