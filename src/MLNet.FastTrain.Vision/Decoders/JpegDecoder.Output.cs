using System.Runtime.Intrinsics;

namespace MLNet.FastTrain.Vision.Decoders;

public static partial class JpegDecoder
{
    /// <summary>c[x·8 + u] = C(u)/2 · cos((2x + 1)uπ/16), with C(0) = 1/√2: the separable inverse DCT's basis.</summary>
    private static readonly float[] IdctBasis = BuildBasis();

    /// <summary>The basis transposed: [u·8 + x].</summary>
    private static readonly float[] IdctBasisTransposed = Enumerable.Range(0, 64).Select(i => IdctBasis[(i % 8) * 8 + i / 8]).ToArray();

    /// <summary>
    /// ReducedBasis[N][X·8 + u]: the full basis averaged over output cell X of N equal cells of the block (the share
    /// of each of the 8 sample positions in that cell), so that a reduced inverse DCT is exactly the full one followed
    /// by area averaging, before rounding. N = 1 to 8; for N = 1 only the DC term is left.
    /// </summary>
    private static readonly float[][] ReducedBasis = Enumerable.Range(0, 9).Select(BuildReducedBasis).ToArray();

    private static float[] BuildReducedBasis(int n)
    {
        var basis = new float[64];
        if (n == 0) return basis;
        for (int cell = 0; cell < n; cell++)
        {
            double start = cell * 8.0 / n, end = (cell + 1) * 8.0 / n;
            for (int u = 0; u < 8; u++)
            {
                double sum = 0;
                for (int x = 0; x < 8; x++)
                {
                    double share = Math.Min(end, x + 1) - Math.Max(start, x);
                    if (share > 0) sum += share * (u == 0 ? Math.Sqrt(0.5) : 1.0) / 2 * Math.Cos((2 * x + 1) * u * Math.PI / 16);
                }
                basis[cell * 8 + u] = (float)(sum * n / 8);
            }
        }
        return basis;
    }

    private static float[] BuildBasis()
    {
        var basis = new float[64];
        for (int x = 0; x < 8; x++)
            for (int u = 0; u < 8; u++)
                basis[x * 8 + u] = (float)((u == 0 ? Math.Sqrt(0.5) : 1.0) / 2 * Math.Cos((2 * x + 1) * u * Math.PI / 16));
        return basis;
    }

    // JFIF YCbCr → RGB in 16-bit fixed point: R = Y + 1.402 Cr', G = Y − 0.34414 Cb' − 0.71414 Cr', B = Y + 1.772 Cb'.
    private const int ScaleBits = 16, Half = 1 << (ScaleBits - 1);
    private static readonly int[] CrToR = Table(i => (Fix(1.40200) * i + Half) >> ScaleBits);
    private static readonly int[] CbToB = Table(i => (Fix(1.77200) * i + Half) >> ScaleBits);
    private static readonly int[] CrToG = Table(i => -Fix(0.71414) * i);
    private static readonly int[] CbToG = Table(i => -Fix(0.34414) * i + Half);

    private static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);

    private static int[] Table(Func<int, int> f) => Enumerable.Range(0, 256).Select(i => f(i - 128)).ToArray();

    private sealed partial class Decoder
    {
        private DecodedImage Output()
        {
            // At 1/d of the size, each 8×8 block of the component with the largest sampling factors yields n = 8/d
            // samples a side. A subsampled component's blocks cover sx × sy times as much of the image, so they are
            // inverse-transformed to n·sx × n·sy samples where that is at most 8 (no upsampling left to do), else to
            // n and upsampled by sx × sy as at full size.
            int d = scale > 0 ? scale : ScaleFor(_width, _height, minSide);
            int n = 8 / d;
            int width = (_width + d - 1) / d, height = (_height + d - 1) / d;
            var full = new byte[_components.Length][];
            var strides = new int[_components.Length];
            for (int i = 0; i < _components.Length; i++)
            {
                var c = _components[i];
                int sx = _hMax / c.H, sy = _vMax / c.V;
                int nw = n * sx <= 8 ? n * sx : n, nh = n * sy <= 8 ? n * sy : n;
                int pw = (c.Width * nw + 7) / 8, ph = (c.Height * nh + 7) / 8;
                int rx = nw == n * sx ? 1 : sx, ry = nh == n * sy ? 1 : sy;
                full[i] = Upsample(Samples(c, nw, nh, pw, ph), pw, ph, rx, ry);
                strides[i] = pw * rx;
            }
            if (_components.Length == 1)
            {
                var gray = new byte[(long)width * height];
                for (int y = 0; y < height; y++) full[0].AsSpan(y * strides[0], width).CopyTo(gray.AsSpan(y * width));
                return new DecodedImage(width, height, 1, gray) { Reduction = d, SourceWidth = _width, SourceHeight = _height };
            }
            // Three components: YCbCr, or RGB (Adobe transform 0, or no Adobe marker and components named R, G, B).
            // Four: CMYK (Adobe transform 0, or no marker) or YCCK (transform 2: YCbCr of the first three, then as
            // CMYK). Adobe stores inks inverted (255 − ink), and libjpeg's YCCK → CMYK gives C = 255 − R of the
            // YCbCr: so with a marker red is C·K/255 (C and K as stored or converted), without one (255 − C)(255 − K)/255.
            bool cmyk = _components.Length == 4;
            bool ycc = cmyk ? _adobeTransform == 2 : !(_adobeTransform == 0 || _adobeTransform < 0 && _components[0].Id == 'R' && _components[1].Id == 'G' && _components[2].Id == 'B');
            bool inverted = _adobeTransform >= 0;
            var pixels = new byte[(long)width * height * 3];
            for (int y = 0; y < height; y++)
            {
                int o = y * width * 3;
                int r0 = y * strides[0], r1 = y * strides[1], r2 = y * strides[2], r3 = cmyk ? y * strides[3] : 0;
                for (int x = 0; x < width; x++, o += 3)
                {
                    int a = full[0][r0 + x], b = full[1][r1 + x], c = full[2][r2 + x];
                    if (ycc)
                    {
                        (a, b, c) = (Clamp(a + CrToR[c]), Clamp(a + ((CbToG[b] + CrToG[c]) >> ScaleBits)), Clamp(a + CbToB[b]));
                        if (cmyk) (a, b, c) = (255 - a, 255 - b, 255 - c);
                    }
                    if (cmyk)
                    {
                        int k = full[3][r3 + x];
                        if (!inverted) (a, b, c, k) = (255 - a, 255 - b, 255 - c, 255 - k);
                        (a, b, c) = ((a * k + 127) / 255, (b * k + 127) / 255, (c * k + 127) / 255);
                    }
                    pixels[o] = (byte)a;
                    pixels[o + 1] = (byte)b;
                    pixels[o + 2] = (byte)c;
                }
            }
            return new DecodedImage(width, height, 3, pixels) { Reduction = d, SourceWidth = _width, SourceHeight = _height };
        }

        private static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

        /// <summary>
        /// Dequantises and inverse-transforms every block to nw × nh samples (8 × 8 at full size); returns the
        /// component's pw × ph samples.
        /// </summary>
        private byte[] Samples(Component c, int nw, int nh, int pw, int ph)
        {
            // Scans check the tables of the components they hold; a component no scan held is checked here.
            var q = _quant[c.Tq] ?? throw Invalid($"component {c.Id} uses quantization table {c.Tq}, which was never defined.");
            var plane = new byte[(long)pw * ph];
            Span<float> quant = stackalloc float[64];
            for (int i = 0; i < 64; i++) quant[i] = q[i];
            Span<float> coef = stackalloc float[64];
            Span<float> tmp = stackalloc float[64];
            Span<byte> block = stackalloc byte[64];
            bool whole = nw == 8 && nh == 8;
            for (int by = 0; by < c.BlocksHigh; by++)
            {
                int rows = Math.Min(nh, ph - by * nh);
                if (rows <= 0) break;
                for (int bx = 0; bx < c.BlocksWide; bx++)
                {
                    int cols = Math.Min(nw, pw - bx * nw);
                    if (cols <= 0) break;
                    var src = c.Coefficients.AsSpan((by * c.StrideBlocks + bx) * 64, 64);
                    if (whole)
                    {
                        for (int i = 0; i < 64; i++) coef[i] = src[i] * quant[i];
                        InverseDct(coef, tmp, block);
                    }
                    else
                    {
                        ReducedInverseDct(src, quant, nw, nh, tmp, block);
                    }
                    for (int y = 0; y < rows; y++) block.Slice(y * nw, cols).CopyTo(plane.AsSpan((by * nh + y) * pw + bx * nw, cols));
                }
            }
            return plane;
        }

        /// <summary>
        /// An nw × nh inverse DCT: the 8 × 8 transform with its output averaged over nw × nh equal cells, computed
        /// directly from the coefficients through <see cref="ReducedBasis"/>. Output rows are nw samples long.
        /// </summary>
        private static void ReducedInverseDct(ReadOnlySpan<short> src, ReadOnlySpan<float> quant, int nw, int nh, Span<float> tmp, Span<byte> block)
        {
            if (nw == 1 && nh == 1)
            {
                block[0] = (byte)Math.Clamp((int)MathF.Round(src[0] * quant[0] / 8 + 128), 0, 255);
                return;
            }
            var bw = ReducedBasis[nw];
            var bh = ReducedBasis[nh];
            // Rows of coefficients → nw samples each (tmp[v·8 + X]), skipping zeros, which most high frequencies are.
            tmp.Clear();
            for (int k = 0; k < 64; k++)
            {
                if (src[k] == 0) continue;
                float f = src[k] * quant[k];
                int v = k >> 3, u = k & 7;
                for (int x = 0; x < nw; x++) tmp[v * 8 + x] += f * bw[x * 8 + u];
            }
            for (int y = 0; y < nh; y++)
            {
                for (int x = 0; x < nw; x++)
                {
                    float sum = 128;
                    for (int v = 0; v < 8; v++) sum += bh[y * 8 + v] * tmp[v * 8 + x];
                    block[y * nw + x] = (byte)Math.Clamp((int)MathF.Round(sum), 0, 255);
                }
            }
        }

        /// <summary>
        /// The separable 8×8 inverse DCT as two small matrix products on 8-wide vectors: tmp = F · Bᵀ over rows, then
        /// f = B · tmp; samples are rounded, shifted by 128 and clamped to 0–255.
        /// </summary>
        private static void InverseDct(ReadOnlySpan<float> coef, Span<float> tmp, Span<byte> block)
        {
            var basisT = IdctBasisTransposed;
            for (int v = 0; v < 8; v++)
            {
                var acc = Vector256<float>.Zero;
                for (int u = 0; u < 8; u++)
                {
                    float f = coef[v * 8 + u];
                    if (f != 0) acc += Vector256.Create(f) * Vector256.Create<float>(basisT.AsSpan(u * 8, 8));
                }
                acc.CopyTo(tmp.Slice(v * 8, 8));
            }
            var offset = Vector256.Create(128f);
            var high = Vector256.Create(255f);
            for (int y = 0; y < 8; y++)
            {
                var acc = offset;
                for (int v = 0; v < 8; v++) acc += Vector256.Create(IdctBasis[y * 8 + v]) * Vector256.Create<float>(tmp.Slice(v * 8, 8));
                acc = Vector256.Min(Vector256.Max(Vector256.Round(acc), Vector256<float>.Zero), high);
                var ints = Vector256.ConvertToInt32(acc);
                for (int x = 0; x < 8; x++) block[y * 8 + x] = (byte)ints[x];
            }
        }

        /// <summary>
        /// A component's w × h samples enlarged by its remaining sampling ratios sx × sy. 2×1, 1×2 and 2×2
        /// subsampling use libjpeg's triangle filter (3/4 of the nearer sample, 1/4 of the farther, edges replicated);
        /// other ratios replicate samples.
        /// </summary>
        private static byte[] Upsample(byte[] plane, int w, int h, int sx, int sy)
        {
            if (sx == 1 && sy == 1) return plane;
            int ow = w * sx, oh = h * sy;
            var output = new byte[(long)ow * oh];
            if (sx == 2 && sy == 2 && w > 2)
            {
                var colSum = new int[w];
                for (int y = 0; y < h; y++)
                {
                    for (int half = 0; half < 2; half++)
                    {
                        int ny = half == 0 ? Math.Max(y - 1, 0) : Math.Min(y + 1, h - 1);
                        for (int x = 0; x < w; x++) colSum[x] = 3 * plane[y * w + x] + plane[ny * w + x];
                        var dst = output.AsSpan((2 * y + half) * ow, ow);
                        dst[0] = (byte)((colSum[0] * 4 + 8) >> 4);
                        dst[1] = (byte)((colSum[0] * 3 + colSum[1] + 7) >> 4);
                        for (int x = 1; x < w - 1; x++)
                        {
                            dst[2 * x] = (byte)((colSum[x] * 3 + colSum[x - 1] + 8) >> 4);
                            dst[2 * x + 1] = (byte)((colSum[x] * 3 + colSum[x + 1] + 7) >> 4);
                        }
                        dst[2 * w - 2] = (byte)((colSum[w - 1] * 3 + colSum[w - 2] + 8) >> 4);
                        dst[2 * w - 1] = (byte)((colSum[w - 1] * 4 + 7) >> 4);
                    }
                }
                return output;
            }
            if (sx == 2 && sy == 1 && w > 2)
            {
                for (int y = 0; y < h; y++)
                {
                    var src = plane.AsSpan(y * w, w);
                    var dst = output.AsSpan(y * ow, ow);
                    dst[0] = src[0];
                    dst[1] = (byte)((src[0] * 3 + src[1] + 2) >> 2);
                    for (int x = 1; x < w - 1; x++)
                    {
                        dst[2 * x] = (byte)((src[x] * 3 + src[x - 1] + 1) >> 2);
                        dst[2 * x + 1] = (byte)((src[x] * 3 + src[x + 1] + 2) >> 2);
                    }
                    dst[2 * w - 2] = (byte)((src[w - 1] * 3 + src[w - 2] + 1) >> 2);
                    dst[2 * w - 1] = src[w - 1];
                }
                return output;
            }
            if (sx == 1 && sy == 2)
            {
                for (int y = 0; y < h; y++)
                {
                    var src = plane.AsSpan(y * w, w);
                    var above = plane.AsSpan(Math.Max(y - 1, 0) * w, w);
                    var below = plane.AsSpan(Math.Min(y + 1, h - 1) * w, w);
                    var top = output.AsSpan(2 * y * ow, ow);
                    var bottom = output.AsSpan((2 * y + 1) * ow, ow);
                    for (int x = 0; x < w; x++)
                    {
                        top[x] = (byte)((src[x] * 3 + above[x] + 1) >> 2);
                        bottom[x] = (byte)((src[x] * 3 + below[x] + 2) >> 2);
                    }
                }
                return output;
            }
            for (int y = 0; y < oh; y++)
            {
                var src = plane.AsSpan(y / sy * w, w);
                var dst = output.AsSpan(y * ow, ow);
                for (int x = 0; x < ow; x++) dst[x] = src[x / sx];
            }
            return output;
        }
    }
}
