using MLNet.FastTrain.Engine.Autograd;

namespace MLNet.FastTrain.Engine;

public static partial class Functional
{
    /// <summary>
    /// The top-left [<paramref name="height"/>, <paramref name="width"/>] of every plane of an [N, C, H, W] tensor (a
    /// copy). With it a convolution or pooling padded less at the end than at the start (ONNX pads [b, b, e, e],
    /// e ≤ b) is the symmetric one with begin padding b, cropped: both read the same windows, the symmetric one only
    /// adds windows past the end.
    /// </summary>
    public static Tensor CropTopLeft(Tensor x, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 4) throw ShapeMismatchException.For("crop", "expected [N, C, H, W]", x.Shape, x.Shape);
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        if (height < 0 || width < 0 || height > h || width > w)
            throw new ArgumentOutOfRangeException(nameof(height), $"crop to {height} × {width} from planes of {h} × {w}.");
        if (height == h && width == w) return x;
        var y = Tensor.Zeros([n, c, height, width], x.DType);
        Copy(x, y, h, w, height, width, toSmaller: true);
        return GradRecorder.Record(y, "crop", [x], g =>
        {
            var gx = Tensor.ZerosLike(x);
            Copy(gx, g, h, w, height, width, toSmaller: false);
            return [gx];
        });

        // Row by row between the large planes (h × w) and the cropped ones.
        static void Copy(Tensor large, Tensor small, int h, int w, int height, int width, bool toSmaller)
        {
            int planes = large.Size(0) * large.Size(1);
            if (large.DType == DType.Float32) Rows(large.AsSpan(), small.AsSpan(), planes, h, w, height, width, toSmaller);
            else Rows(large.AsDoubleSpan(), small.AsDoubleSpan(), planes, h, w, height, width, toSmaller);
        }

        static void Rows<T>(Span<T> large, Span<T> small, int planes, int h, int w, int height, int width, bool toSmaller)
        {
            for (int p = 0; p < planes; p++)
                for (int r = 0; r < height; r++)
                {
                    var wide = large.Slice((p * h + r) * w, width);
                    var narrow = small.Slice((p * height + r) * width, width);
                    if (toSmaller) wide.CopyTo(narrow); else narrow.CopyTo(wide);
                }
        }
    }

    /// <summary>
    /// The output <paramref name="y"/> of a window over <paramref name="x"/> padded by <paramref name="begin"/> on both
    /// ends, cropped to what padding <paramref name="end"/> at the end gives (e ≤ b; unchanged when they are equal).
    /// </summary>
    public static Tensor CropToEndPadding(Tensor y, Tensor x, (int H, int W) kernel, (int H, int W) stride, (int H, int W) dilation, (int H, int W) begin, (int H, int W) end) =>
        end == begin ? y : CropTopLeft(y,
            Math.Min(y.Size(2), WindowOutputSize(x.Size(2), kernel.H, stride.H, dilation.H, begin.H, end.H)),
            Math.Min(y.Size(3), WindowOutputSize(x.Size(3), kernel.W, stride.W, dilation.W, begin.W, end.W)));

    /// <summary>
    /// The output side of a window of <paramref name="kernel"/> (dilated) at <paramref name="stride"/> over
    /// <paramref name="size"/> padded by <paramref name="begin"/> and <paramref name="end"/>.
    /// </summary>
    public static int WindowOutputSize(int size, int kernel, int stride, int dilation, int begin, int end) =>
        (int)Math.Floor((double)(size + begin + end - dilation * (kernel - 1) - 1) / stride) + 1;
}
