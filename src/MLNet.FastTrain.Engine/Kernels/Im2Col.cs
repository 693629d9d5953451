using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>The geometry of a 2-d convolution or pooling window over one image.</summary>
internal readonly record struct ConvGeometry(
    int Channels, int Height, int Width, int KernelH, int KernelW,
    int StrideH, int StrideW, int PadH, int PadW, int DilationH, int DilationW)
{
    public int OutH => (Height + 2 * PadH - DilationH * (KernelH - 1) - 1) / StrideH + 1;

    public int OutW => (Width + 2 * PadW - DilationW * (KernelW - 1) - 1) / StrideW + 1;

    /// <summary>Rows of the column matrix: one per (channel, kernel row, kernel column).</summary>
    public int ColRows => Channels * KernelH * KernelW;

    /// <summary>Columns of the column matrix: one per output pixel.</summary>
    public int ColCols => OutH * OutW;
}

/// <summary>
/// Unfolds image patches into a column matrix so a convolution becomes one GEMM, and folds such a matrix back
/// (summing overlaps) for the input gradient.
/// </summary>
/// <remarks>
/// col[(c·KH + kh)·KW + kw, oh·OW + ow] = x[c, oh·SH − PH + kh·DH, ow·SW − PW + kw·DW], zero outside the image.
/// </remarks>
internal static class Im2Col
{
    /// <param name="image">One image group [channels, height, width].</param>
    /// <param name="g">The geometry.</param>
    /// <param name="col">Receives the column matrix; row r starts at r·<paramref name="ldCol"/>, so several images can sit side by side.</param>
    /// <param name="ldCol">The row stride of <paramref name="col"/>, at least OH·OW.</param>
    public static void Unfold<T>(ReadOnlySpan<T> image, in ConvGeometry g, Span<T> col, int ldCol) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int oh = g.OutH, ow = g.OutW, plane = g.Height * g.Width;
        int row = 0;
        for (int c = 0; c < g.Channels; c++)
        {
            var src = image.Slice(c * plane, plane);
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                for (int kw = 0; kw < g.KernelW; kw++, row++)
                {
                    var dst = col.Slice(row * ldCol, oh * ow);
                    if (IsSameSize(g))
                    {
                        ShiftPlane(src, dst, g.Height, g.Width, kh * g.DilationH - g.PadH, kw * g.DilationW - g.PadW);
                        continue;
                    }
                    for (int y = 0; y < oh; y++)
                    {
                        int iy = y * g.StrideH - g.PadH + kh * g.DilationH;
                        var dstRow = dst.Slice(y * ow, ow);
                        if ((uint)iy >= (uint)g.Height) { dstRow.Clear(); continue; }
                        int ix0 = -g.PadW + kw * g.DilationW;
                        var srcRow = src.Slice(iy * g.Width, g.Width);
                        if (g.StrideW == 1)
                        {
                            // Output columns whose input column ix0 + x lies inside the row form one contiguous run.
                            int xStart = Math.Clamp(-ix0, 0, ow), xEnd = Math.Clamp(g.Width - ix0, xStart, ow);
                            if (xStart == xEnd) { dstRow.Clear(); continue; }
                            dstRow[..xStart].Clear();
                            srcRow.Slice(ix0 + xStart, xEnd - xStart).CopyTo(dstRow[xStart..xEnd]);
                            dstRow[xEnd..].Clear();
                            continue;
                        }
                        // Strided: the in-image columns are x in [xStart, xEnd); zero the rest, gather the middle.
                        var (xs, xe) = ValidColumns(ix0, g.StrideW, g.Width, ow);
                        dstRow[..xs].Clear();
                        dstRow[xe..].Clear();
                        int x = xs;
                        if (g.StrideW == 2 && typeof(T) == typeof(float))
                            x = GatherEven(MemoryMarshal.Cast<T, float>(srcRow), ix0, xs, xe, MemoryMarshal.Cast<T, float>(dstRow));
                        ref T from = ref MemoryMarshal.GetReference(srcRow);
                        ref T to = ref MemoryMarshal.GetReference(dstRow);
                        for (; x < xe; x++) Unsafe.Add(ref to, x) = Unsafe.Add(ref from, ix0 + x * g.StrideW);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Adds each column-matrix entry back into the image position it was read from. The column matrix is scratch:
    /// entries that correspond to padding may be zeroed on the way.
    /// </summary>
    public static void FoldAdd<T>(Span<T> col, int ldCol, in ConvGeometry g, Span<T> image) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int oh = g.OutH, ow = g.OutW, plane = g.Height * g.Width;
        int row = 0;
        for (int c = 0; c < g.Channels; c++)
        {
            var dstPlane = image.Slice(c * plane, plane);
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                for (int kw = 0; kw < g.KernelW; kw++, row++)
                {
                    var src = col.Slice(row * ldCol, oh * ow);
                    if (IsSameSize(g))
                    {
                        ShiftAddPlane(src, dstPlane, g.Height, g.Width, kh * g.DilationH - g.PadH, kw * g.DilationW - g.PadW);
                        continue;
                    }
                    for (int y = 0; y < oh; y++)
                    {
                        int iy = y * g.StrideH - g.PadH + kh * g.DilationH;
                        if ((uint)iy >= (uint)g.Height) continue;
                        int ix0 = -g.PadW + kw * g.DilationW;
                        var dstRow = dstPlane.Slice(iy * g.Width, g.Width);
                        var srcRow = src.Slice(y * ow, ow);
                        if (g.StrideW == 1)
                        {
                            int xStart = Math.Clamp(-ix0, 0, ow), xEnd = Math.Clamp(g.Width - ix0, xStart, ow);
                            if (xStart == xEnd) continue;
                            var d = dstRow.Slice(ix0 + xStart, xEnd - xStart);
                            System.Numerics.Tensors.TensorPrimitives.Add(d, srcRow[xStart..xEnd], d);
                            continue;
                        }
                        var (xs, xe) = ValidColumns(ix0, g.StrideW, g.Width, ow);
                        ref T from = ref MemoryMarshal.GetReference(srcRow);
                        ref T to = ref MemoryMarshal.GetReference(dstRow);
                        for (int x = xs; x < xe; x++) Unsafe.Add(ref to, ix0 + x * g.StrideW) += Unsafe.Add(ref from, x);
                    }
                }
            }
        }
    }

    /// <summary>
    /// The output columns x in [start, end) whose input column ix0 + x·stride lies in [0, width); the range is
    /// contiguous because the input column grows with x.
    /// </summary>
    private static (int Start, int End) ValidColumns(int ix0, int stride, int width, int ow)
    {
        int start = ix0 >= 0 ? 0 : Math.Min(ow, (-ix0 + stride - 1) / stride);
        int end = ix0 >= width ? start : Math.Min(ow, (width - 1 - ix0) / stride + 1);
        return (start, Math.Max(start, end));
    }

    /// <summary>Stride 1 with an output as large as the input ("same" padding): each column-matrix row is the image shifted.</summary>
    private static bool IsSameSize(in ConvGeometry g) => g.StrideH == 1 && g.StrideW == 1 && g.OutH == g.Height && g.OutW == g.Width;

    /// <summary>
    /// dst[y, x] = src[y + dy, x + dx], zero where that falls outside. One contiguous copy covers all rows, then the
    /// columns that wrapped round a row edge and the rows outside the image are zeroed.
    /// </summary>
    private static void ShiftPlane<T>(ReadOnlySpan<T> src, Span<T> dst, int h, int w, int dy, int dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int y0 = Math.Clamp(-dy, 0, h), y1 = Math.Clamp(h - dy, y0, h);
        dst[..(y0 * w)].Clear();
        dst[(y1 * w)..].Clear();
        if (y0 == y1) return;
        int start = y0 * w, end = y1 * w, shift = dy * w + dx;
        int from = Math.Max(start, -shift), to = Math.Min(end, src.Length - shift);
        if (from < to) src.Slice(from + shift, to - from).CopyTo(dst[from..to]);
        dst[start..Math.Max(start, from)].Clear();
        if (to < end) dst[Math.Max(to, start)..end].Clear();
        ZeroWrappedColumns(dst, y0, y1, w, dx);
    }

    /// <summary>
    /// image[y + dy, x + dx] += col[y, x] for positions inside the image (the inverse of <see cref="ShiftPlane"/>).
    /// The entries of col whose target wraps round a row edge are zeroed first, so one contiguous add does the rest.
    /// </summary>
    private static void ShiftAddPlane<T>(Span<T> col, Span<T> image, int h, int w, int dy, int dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int y0 = Math.Clamp(-dy, 0, h), y1 = Math.Clamp(h - dy, y0, h);
        if (y0 == y1) return;
        int shift = dy * w + dx;
        int from = Math.Max(y0 * w, -shift), to = Math.Min(y1 * w, image.Length - shift);
        if (from >= to) return;
        ZeroWrappedColumns(col, y0, y1, w, dx);
        var d = image.Slice(from + shift, to - from);
        System.Numerics.Tensors.TensorPrimitives.Add(d, col[from..to], d);
    }

    private static void ZeroWrappedColumns<T>(Span<T> plane, int y0, int y1, int w, int dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dx == 0) return;
        int xStart = dx > 0 ? Math.Max(0, w - dx) : 0, xEnd = dx > 0 ? w : Math.Min(w, -dx);
        // Usually one or two columns: plain stores beat a Clear call per row.
        for (int y = y0; y < y1; y++)
            for (int x = xStart; x < xEnd; x++) plane[y * w + x] = T.Zero;
    }

    /// <summary>Lane indices that pick the even elements out of two 16-float vectors laid end to end.</summary>
    internal static readonly Vector512<int> EvenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);

    /// <summary>
    /// dst[x] = src[ix0 + 2x] for x from <paramref name="xs"/> on, sixteen at a time while both source vectors lie
    /// inside the row; returns the first x left for the caller's scalar loop.
    /// </summary>
    internal static int GatherEven(ReadOnlySpan<float> src, int ix0, int xs, int xe, Span<float> dst)
    {
        int x = xs;
        if (!Vector512.IsHardwareAccelerated) return x;
        ref float from = ref MemoryMarshal.GetReference(src);
        ref float to = ref MemoryMarshal.GetReference(dst);
        for (; x + 16 <= xe && ix0 + 2 * x + 32 <= src.Length; x += 16)
        {
            ref float p = ref Unsafe.Add(ref from, ix0 + 2 * x);
            var lo = Vector512.LoadUnsafe(ref p);
            var hi = Vector512.LoadUnsafe(ref p, 16);
            Avx512F.PermuteVar16x32x2(lo, EvenLanes, hi).StoreUnsafe(ref to, (nuint)x);
        }
        return x;
    }
}
