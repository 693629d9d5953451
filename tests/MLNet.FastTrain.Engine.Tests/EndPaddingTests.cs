using MLNet.FastTrain.Engine.Modules;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>
/// Convolutions and max-pooling padded less at the end than at the start (ONNX pads [b, b, e, e]) against the plain
/// definition: the input padded explicitly, b before and e after, then the unpadded window.
/// </summary>
public class EndPaddingTests
{
    /// <summary>x placed inside a field of <paramref name="fill"/>, <paramref name="begin"/> before and <paramref name="end"/> after each spatial axis.</summary>
    private static Tensor PadExplicitly(Tensor x, int begin, int end, float fill)
    {
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        int ph = h + begin + end, pw = w + begin + end;
        var padded = Tensor.Zeros(n, c, ph, pw);
        var dst = padded.AsSpan();
        dst.Fill(fill);
        var src = x.AsSpan();
        for (int p = 0; p < n * c; p++)
            for (int r = 0; r < h; r++)
                src.Slice((p * h + r) * w, w).CopyTo(dst.Slice((p * ph + r + begin) * pw + begin, w));
        return padded;
    }

    [Theory]
    [InlineData(7, 2, 3, 3, 2)]    // the ImageNet stem: 7×7, stride 2, pads [3, 3, 2, 2]
    [InlineData(3, 2, 1, 0, 1)]    // a stage's strided 3×3: pads [1, 1, 0, 0]
    [InlineData(3, 1, 1, 0, 1)]
    [InlineData(5, 3, 2, 1, 1)]
    public void A_convolution_with_less_end_padding_is_the_explicitly_padded_one(int kernel, int stride, int begin, int end, int dilation)
    {
        for (int size = 9; size <= 14; size++)
        {
            var g = new Generator((ulong)(size * 7 + kernel));
            var x = Tensor.Normal([2, 3, size, size + 1], 0, 1, g);
            var conv = new Conv2d(3, 4, (kernel, kernel), (stride, stride), (begin, begin), (dilation, dilation), bias: true, generator: g) { PaddingEnd = (end, end) };
            var expected = Functional.Conv2d(PadExplicitly(x, begin, end, 0f), conv.Weight, conv.Bias, (stride, stride), (0, 0), (dilation, dilation), 1);
            var actual = conv.Forward(x);
            Assert.Equal(expected.ShapeArray(), actual.ShapeArray());
            Assert.Equal(Functional.WindowOutputSize(size, kernel, stride, dilation, begin, end), actual.Size(2));
            var e = expected.ToArray();
            var a = actual.ToArray();
            for (int i = 0; i < e.Length; i++) Assert.Equal(e[i], a[i], 1e-4f);
        }
    }

    [Theory]
    [InlineData(3, 2, 1, 0)]       // the ImageNet max-pool: 3×3, stride 2, pads [1, 1, 0, 0]
    [InlineData(2, 2, 1, 0)]
    public void A_max_pool_with_less_end_padding_is_the_explicitly_padded_one(int kernel, int stride, int begin, int end)
    {
        for (int size = 6; size <= 11; size++)
        {
            var x = Tensor.Normal([1, 2, size, size], 0, 1, new Generator((ulong)size));
            var pool = new MaxPool2d(kernel, stride, begin) { PaddingEnd = end };
            var expected = Functional.MaxPool2d(PadExplicitly(x, begin, end, float.NegativeInfinity), (kernel, kernel), (stride, stride), (0, 0));
            var actual = pool.Forward(x);
            Assert.Equal(expected.ShapeArray(), actual.ShapeArray());
            Assert.Equal(expected.ToArray(), actual.ToArray());
        }
    }

    [Fact]
    public void End_padding_larger_than_the_start_is_refused_and_equal_padding_is_symmetric()
    {
        var conv = new Conv2d(1, 1, 3, 1, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => conv.PaddingEnd = (2, 2));
        conv.PaddingEnd = (1, 1);
        Assert.Null(conv.PaddingEnd);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MaxPool2d(3, 2, 1) { PaddingEnd = 2 });
    }
}
