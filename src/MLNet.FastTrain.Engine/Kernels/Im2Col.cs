using System.Numerics;

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
    public static void Unfold<T>(ReadOnlySpan<T> image, in ConvGeometry g, Span<T> col) where T : unmanaged, IFloatingPointIeee754<T>
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
                    var dst = col.Slice(row * oh * ow, oh * ow);
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
                        for (int x = 0; x < ow; x++)
                        {
                            int ix = ix0 + x * g.StrideW;
                            dstRow[x] = (uint)ix < (uint)g.Width ? srcRow[ix] : T.Zero;
                        }
                    }
                }
            }
        }
    }

    /// <summary>Adds each column-matrix entry back into the image position it was read from.</summary>
    public static void FoldAdd<T>(ReadOnlySpan<T> col, in ConvGeometry g, Span<T> image) where T : unmanaged, IFloatingPointIeee754<T>
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
                    var src = col.Slice(row * oh * ow, oh * ow);
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
                        for (int x = 0; x < ow; x++)
                        {
                            int ix = ix0 + x * g.StrideW;
                            if ((uint)ix < (uint)g.Width) dstRow[ix] += srcRow[x];
                        }
                    }
                }
            }
        }
    }
}
