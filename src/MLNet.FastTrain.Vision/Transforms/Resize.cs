namespace MLNet.FastTrain.Vision.Transforms;

/// <summary>
/// Image resizing on planes of 8-bit or float pixels: bilinear interpolation when enlarging (pixel centres aligned,
/// as align_corners=False), area averaging when shrinking, so no detail is skipped over.
/// </summary>
public static class Resize
{
    /// <summary>Resizes each of <paramref name="channels"/> planes from h×w to oh×ow.</summary>
    public static void Planes(ReadOnlySpan<byte> src, int channels, int h, int w, Span<float> dst, int oh, int ow)
    {
        if (src.Length < channels * h * w || dst.Length < channels * oh * ow)
            throw new ArgumentException($"Buffers too small for {channels}×{h}×{w} → {channels}×{oh}×{ow}.");
        if (oh < 1 || ow < 1) throw new ArgumentOutOfRangeException(nameof(oh), $"Target size {oh}×{ow} must be positive.");
        Apply(src, channels, h, w, Weights(h, oh), Weights(w, ow), dst, oh, ow);
    }

    /// <summary>
    /// Resizes the window [y0, y0 + wh) × [x0, x0 + ww) of each of <paramref name="channels"/> h×w planes, in input
    /// pixels and possibly fractional, to oh×ow: area averaging with partial pixels at the window's edges. What a
    /// centre crop of a full-size image becomes on a reduced decode of it (<see cref="Decoders.DecodedImage.Reduction"/>).
    /// </summary>
    public static void Window(ReadOnlySpan<byte> src, int channels, int h, int w, double y0, double x0, double wh, double ww, Span<float> dst, int oh, int ow)
    {
        if (src.Length < channels * h * w || dst.Length < channels * oh * ow)
            throw new ArgumentException($"Buffers too small for {channels}×{h}×{w} → {channels}×{oh}×{ow}.");
        if (oh < 1 || ow < 1) throw new ArgumentOutOfRangeException(nameof(oh), $"Target size {oh}×{ow} must be positive.");
        Apply(src, channels, h, w, Weights(h, oh, y0, wh), Weights(w, ow, x0, ww), dst, oh, ow);
    }

    private static void Apply(ReadOnlySpan<byte> src, int channels, int h, int w, (int Index, float Weight)[][] rows, (int Index, float Weight)[][] cols, Span<float> dst, int oh, int ow)
    {
        var tmp = new float[oh * w];
        for (int c = 0; c < channels; c++)
        {
            var plane = src.Slice(c * h * w, h * w);
            // Rows first, then columns: the weights separate.
            Array.Clear(tmp);
            for (int y = 0; y < oh; y++)
                foreach (var (index, weight) in rows[y])
                    for (int x = 0; x < w; x++) tmp[y * w + x] += weight * plane[index * w + x];
            var outPlane = dst.Slice(c * oh * ow, oh * ow);
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++)
                {
                    float sum = 0;
                    foreach (var (index, weight) in cols[x]) sum += weight * tmp[y * w + index];
                    outPlane[y * ow + x] = sum;
                }
        }
    }

    /// <summary>
    /// Area weights of a fractional window [start, start + extent) of an input of inSize pixels for outSize outputs:
    /// each output averages its share of the window, partial input pixels weighted by their overlap. Weights sum to 1.
    /// </summary>
    internal static (int Index, float Weight)[][] Weights(int inSize, int outSize, double start, double extent)
    {
        var result = new (int, float)[outSize][];
        double scale = extent / outSize;
        for (int o = 0; o < outSize; o++)
        {
            var list = new List<(int, float)>();
            double from = start + o * scale, to = start + (o + 1) * scale;
            for (int i = (int)Math.Floor(from); i < Math.Ceiling(to - 1e-12); i++)
            {
                double overlap = Math.Min(to, i + 1) - Math.Max(from, i);
                if (overlap > 0) list.Add((Math.Clamp(i, 0, inSize - 1), (float)(overlap / scale)));
            }
            result[o] = list.ToArray();
        }
        return result;
    }

    /// <summary>
    /// For each output position, the input positions and weights that make it: a tent of width one output pixel
    /// when enlarging (bilinear), a box of one output pixel's extent when shrinking (area). Weights sum to 1.
    /// </summary>
    internal static (int Index, float Weight)[][] Weights(int inSize, int outSize)
    {
        if (inSize > outSize) return Weights(inSize, outSize, 0, inSize);
        var result = new (int, float)[outSize][];
        double scale = (double)inSize / outSize;
        for (int o = 0; o < outSize; o++)
        {
            double centre = (o + 0.5) * scale - 0.5;
            int i0 = (int)Math.Floor(centre);
            double f = centre - i0;
            result[o] = [(Math.Clamp(i0, 0, inSize - 1), (float)(1 - f)), (Math.Clamp(i0 + 1, 0, inSize - 1), (float)f)];
        }
        return result;
    }
}
