using MLNet.FastTrain.Engine;
using MLNet.FastTrain.TestUtilities;
using Xunit;
using F = MLNet.FastTrain.Engine.Functional;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>Every differentiable operation against central differences in double precision.</summary>
[Trait("Category", "Kernel")]
public class GradientCheckTests
{
    private static Tensor R(params int[] shape) => Tensor.Normal(shape, generator: new Generator((ulong)shape.Sum() * 31 + (ulong)shape.Length), dtype: DType.Float64);

    private static Tensor Positive(params int[] shape)
    {
        var t = Tensor.Uniform(shape, 0.5, 2.0, new Generator(99), DType.Float64);
        return t;
    }

    public static TheoryData<string> Cases => new(CaseTable.Keys);

    private static readonly Dictionary<string, (Func<Tensor[], Tensor> F, Func<Tensor[]> Inputs)> CaseTable = new()
    {
        ["add_same"] = (x => x[0] + x[1], () => [R(3, 4), R(3, 4)]),
        ["add_broadcast_row"] = (x => x[0] + x[1], () => [R(3, 4), R(4)]),
        ["add_broadcast_both"] = (x => x[0] + x[1], () => [R(2, 1, 4), R(3, 1)]),
        ["add_scalar_tensor"] = (x => x[0] + x[1], () => [R(3, 4), R(1)]),
        ["sub_broadcast"] = (x => x[0] - x[1], () => [R(2, 3, 4), R(3, 1)]),
        ["sub_scalar_left"] = (x => x[0] - x[1], () => [R(1), R(2, 3)]),
        ["mul_same"] = (x => x[0] * x[1], () => [R(3, 4), R(3, 4)]),
        ["mul_broadcast_channel"] = (x => x[0] * x[1], () => [R(2, 3, 2, 2), R(1, 3, 1, 1)]),
        ["div_same"] = (x => x[0] / x[1], () => [R(3, 4), Positive(3, 4)]),
        ["div_broadcast"] = (x => x[0] / x[1], () => [R(2, 5), Positive(5)]),
        ["mul_scalar"] = (x => x[0] * 2.5, () => [R(3, 4)]),
        ["add_scalar"] = (x => x[0] + 1.5, () => [R(3, 4)]),
        ["neg"] = (x => -x[0], () => [R(5)]),
        ["relu"] = (x => F.Relu(x[0]), () => [R(4, 5)]),
        ["leaky_relu"] = (x => F.LeakyRelu(x[0], 0.1), () => [R(4, 5)]),
        ["gelu"] = (x => F.Gelu(x[0]), () => [R(4, 5)]),
        ["sigmoid"] = (x => F.Sigmoid(x[0]), () => [R(4, 5)]),
        ["tanh"] = (x => F.Tanh(x[0]), () => [R(4, 5)]),
        ["exp"] = (x => F.Exp(x[0]), () => [R(4, 5)]),
        ["log"] = (x => F.Log(x[0]), () => [Positive(4, 5)]),
        ["sum_all"] = (x => F.Sum(x[0]), () => [R(3, 4)]),
        ["sum_dim0"] = (x => F.Sum(x[0], 0), () => [R(3, 4, 2)]),
        ["sum_dim1_keep"] = (x => F.Sum(x[0], 1, keepDim: true), () => [R(3, 4, 2)]),
        ["sum_dim_last"] = (x => F.Sum(x[0], -1), () => [R(3, 4, 2)]),
        ["mean_all"] = (x => F.Mean(x[0]), () => [R(3, 4)]),
        ["mean_dim"] = (x => F.Mean(x[0], 1), () => [R(3, 4)]),
        ["max_dim"] = (x => F.Max(x[0], 1).Values, () => [R(3, 5, 2)]),
        ["matmul"] = (x => F.MatMul(x[0], x[1]), () => [R(3, 4), R(4, 5)]),
        ["linear_bias"] = (x => F.Linear(x[0], x[1], x[2]), () => [R(4, 6), R(3, 6), R(3)]),
        ["linear_no_bias"] = (x => F.Linear(x[0], x[1]), () => [R(4, 6), R(3, 6)]),
        ["conv2d_basic"] = (x => F.Conv2d(x[0], x[1], x[2]), () => [R(2, 2, 5, 4), R(3, 2, 3, 3), R(3)]),
        ["conv2d_stride_pad"] = (x => F.Conv2d(x[0], x[1], x[2], stride: (2, 2), padding: (1, 1)), () => [R(2, 2, 6, 5), R(3, 2, 3, 3), R(3)]),
        ["conv2d_dilation"] = (x => F.Conv2d(x[0], x[1], null, padding: (2, 1), dilation: (2, 1)), () => [R(1, 2, 6, 5), R(2, 2, 3, 3)]),
        ["conv2d_groups"] = (x => F.Conv2d(x[0], x[1], x[2], padding: (1, 1), groups: 2), () => [R(2, 4, 4, 4), R(6, 2, 3, 3), R(6)]),
        ["conv2d_depthwise"] = (x => F.Conv2d(x[0], x[1], null, padding: (1, 1), groups: 3), () => [R(1, 3, 4, 5), R(3, 1, 3, 3)]),
        ["conv2d_rect_kernel"] = (x => F.Conv2d(x[0], x[1], null, stride: (1, 2)), () => [R(1, 2, 5, 7), R(2, 2, 2, 3)]),
        ["conv2d_kernel_wider_than_input"] = (x => F.Conv2d(x[0], x[1], null, padding: (1, 2)), () => [R(1, 1, 3, 1), R(2, 1, 3, 5)]),
        ["conv2d_pointwise"] = (x => F.Conv2d(x[0], x[1], x[2]), () => [R(2, 3, 3, 4), R(4, 3, 1, 1), R(4)]),
        ["conv2d_pointwise_stride2"] = (x => F.Conv2d(x[0], x[1], null, stride: (2, 2)), () => [R(2, 3, 5, 4), R(4, 3, 1, 1)]),
        ["conv2d_stride3_dilation2_pad2"] = (x => F.Conv2d(x[0], x[1], null, stride: (3, 3), padding: (2, 2), dilation: (2, 2)), () => [R(1, 2, 9, 10), R(2, 2, 3, 3)]),
        ["max_pool2d"] = (x => F.MaxPool2d(x[0], (2, 2)), () => [R(2, 2, 4, 6)]),
        ["max_pool2d_overlap_pad"] = (x => F.MaxPool2d(x[0], (3, 3), (2, 2), (1, 1)), () => [R(1, 2, 5, 6)]),
        ["avg_pool2d"] = (x => F.AvgPool2d(x[0], (2, 2)), () => [R(2, 2, 4, 6)]),
        ["avg_pool2d_pad_include"] = (x => F.AvgPool2d(x[0], (3, 3), (2, 2), (1, 1)), () => [R(1, 2, 5, 6)]),
        ["avg_pool2d_pad_exclude"] = (x => F.AvgPool2d(x[0], (3, 3), (2, 2), (1, 1), countIncludePad: false), () => [R(1, 2, 5, 6)]),
        ["adaptive_avg_pool2d_global"] = (x => F.AdaptiveAvgPool2d(x[0], (1, 1)), () => [R(2, 3, 4, 5)]),
        ["adaptive_avg_pool2d_uneven"] = (x => F.AdaptiveAvgPool2d(x[0], (3, 2)), () => [R(1, 2, 7, 5)]),
        ["batch_norm2d_train"] = (x => F.BatchNorm2d(x[0], null, null, x[1], x[2], training: true), () => [R(3, 2, 3, 3), R(2), R(2)]),
        ["batch_norm2d_train_no_affine"] = (x => F.BatchNorm2d(x[0], null, null, null, null, training: true), () => [R(2, 3, 2, 2)]),
        ["batch_norm2d_relu_train"] = (x => F.BatchNorm2dRelu(x[0], null, null, x[1], x[2], training: true), () => [R(3, 2, 3, 3), R(2), R(2)]),
        ["batch_norm2d_relu_no_affine"] = (x => F.BatchNorm2dRelu(x[0], null, null, null, null, training: true), () => [R(2, 3, 2, 2)]),
        ["batch_norm2d_add_relu_train"] = (x => F.BatchNorm2dRelu(x[0], null, null, x[1], x[2], training: true, residual: x[3]), () => [R(3, 2, 3, 3), R(2), R(2), R(3, 2, 3, 3)]),
        ["batch_norm2d_add_relu_eval"] = (x => F.BatchNorm2dRelu(x[0], Tensor.FromArray(new[] { 0.1, -0.2 }), Tensor.FromArray(new[] { 1.5, 0.7 }), x[1], x[2], training: false, residual: x[3]), () => [R(2, 2, 3, 3), R(2), R(2), R(2, 2, 3, 3)]),
        ["batch_norm2d_eval"] = (x => F.BatchNorm2d(x[0], Tensor.FromArray(new[] { 0.1, -0.2 }), Tensor.FromArray(new[] { 1.5, 0.7 }), x[1], x[2], training: false), () => [R(2, 2, 3, 3), R(2), R(2)]),
        ["softmax_last"] = (x => F.Softmax(x[0]), () => [R(3, 5)]),
        ["softmax_dim0"] = (x => F.Softmax(x[0], 0), () => [R(3, 5, 2)]),
        ["log_softmax_last"] = (x => F.LogSoftmax(x[0]), () => [R(3, 5)]),
        ["log_softmax_middle"] = (x => F.LogSoftmax(x[0], 1), () => [R(2, 4, 3)]),
        ["cross_entropy"] = (x => F.CrossEntropy(x[0], new[] { 1, 0, 3, 2 }), () => [R(4, 5)]),
        ["cross_entropy_weighted"] = (x => F.CrossEntropy(x[0], new[] { 1, 0, 3, 2 }, Tensor.FromArray(new[] { 1.0, 2, 0.5, 1, 3 })), () => [R(4, 5)]),
        ["cross_entropy_smoothing"] = (x => F.CrossEntropy(x[0], new[] { 1, 0, 3, 2 }, labelSmoothing: 0.15), () => [R(4, 5)]),
        ["cross_entropy_weighted_smoothing_sum"] = (x => F.CrossEntropy(x[0], new[] { 4, 0, 3 }, Tensor.FromArray(new[] { 1.0, 2, 0.5, 1, 3 }), 0.2, Reduction.Sum), () => [R(3, 5)]),
        ["cross_entropy_none"] = (x => F.CrossEntropy(x[0], new[] { 1, 0, 3 }, reduction: Reduction.None), () => [R(3, 4)]),
        ["mse"] = (x => F.MseLoss(x[0], x[1]), () => [R(3, 4), R(3, 4)]),
        ["bce_with_logits"] = (x => F.BinaryCrossEntropyWithLogits(x[0], x[1]), () => [R(3, 4), Tensor.Uniform([3, 4], 0, 1, new Generator(5), DType.Float64)]),
        ["flatten"] = (x => F.Flatten(x[0]) * x[1], () => [R(2, 3, 2), R(2, 6)]),
        ["reshape"] = (x => x[0].Reshape(4, -1) * x[1], () => [R(2, 6), R(4, 3)]),
        ["narrow"] = (x => x[0].Narrow(1, 2) * 3.0, () => [R(4, 3)]),
        ["concat_dim0"] = (x => F.Concat([x[0], x[1]], 0), () => [R(2, 3), R(4, 3)]),
        ["concat_dim1"] = (x => F.Concat([x[0], x[1], x[0]], 1), () => [R(2, 3), R(2, 1)]),
        ["transpose"] = (x => F.Transpose(x[0]), () => [R(3, 5)]),
        ["crop_top_left"] = (x => F.CropTopLeft(x[0], 3, 2) * 2.0, () => [R(2, 2, 4, 5)]),
        ["conv_cropped_to_end_padding"] = (x => F.CropTopLeft(F.Conv2d(x[0], x[1], stride: (2, 2), padding: (1, 1)), 2, 2), () => [R(1, 2, 5, 5), R(3, 2, 3, 3)]),
        ["dropout_fixed_mask"] = (x => F.Dropout(x[0], 0.4, training: true, new Generator(11)), () => [R(4, 6)]),
        ["clone"] = (x => x[0].Clone() * x[0], () => [R(3, 3)]),
        ["residual_block"] = (x => F.Relu(F.Conv2d(F.Relu(x[0]), x[1], padding: (1, 1)) + x[0]), () => [R(1, 2, 4, 4), R(2, 2, 3, 3)]),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_matches_central_differences(string name)
    {
        var (f, inputs) = CaseTable[name];
        GradCheck.Check(f, inputs());
    }

    [Fact]
    public void Grad_check_detects_a_wrong_backward_rule()
    {
        // A deliberately wrong rule (gradient doubled) must fail the check: the checker is not vacuous.
        Func<Tensor[], Tensor> wrong = x =>
        {
            var y = F.MulScalar(x[0].Detach(), 3.0);
            return MLNet.FastTrain.Engine.Autograd.GradRecorder.Record(y, "wrong", [x[0]], g => [F.MulScalar(g, 6.0)]);
        };
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => GradCheck.Check(wrong, [R(3)]));
    }
}
