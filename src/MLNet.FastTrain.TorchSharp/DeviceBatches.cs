using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.FastTrain.TorchSharp;

/// <summary>
/// Prepares a batch of uint8 pixels on a device: normalisation and the drawn augmentation's stages as tensor
/// operations, the same stages the managed kernels apply on the host (docs/design.md §9, "Batches on the device").
/// Only the pixels (a quarter of the float batch) and the random choices cross to the device.
/// </summary>
public static class DeviceBatches
{
    /// <summary>The normalised, augmented images [B, C, H, W] as float32 on <paramref name="device"/>.</summary>
    public static Tensor Prepare(PixelBatch batch, Device device)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(device);
        long b = batch.Count, c = batch.Channels, h = batch.Height, w = batch.Width;
        var host = empty([b, c, h, w], ScalarType.Byte);
        batch.Pixels.CopyTo(host.bytes);
        var x = (device.type == DeviceType.CPU ? host : host.to(device)).to_type(ScalarType.Float32);
        // (x / 255 − mean) / std as one multiply-add per channel.
        var scale = tensor(batch.Std.Select(s => 1f / (255f * s)).ToArray(), [1, c, 1, 1], device: device);
        var shift = tensor(batch.Mean.Zip(batch.Std, (m, s) => -m / s).ToArray(), [1, c, 1, 1], device: device);
        x = x.mul(scale).add_(shift);
        if (batch.Augmentation is null) return x;
        foreach (var stage in batch.Augmentation.Stages)
        {
            x = stage switch
            {
                FlipStage flip => Flip(x, flip, device),
                ShiftStage s => Shift(x, s, device),
                ResampleStage r => Resample(x, r, device),
                LightingStage l => Lighting(x, l, device),
                _ => throw new NotSupportedException($"The torch engine has no device kernel for the augmentation stage {stage.GetType().Name}."),
            };
        }
        return x;
    }

    private static Tensor PerImage(bool[] values, Device device) => tensor(values, [values.Length, 1, 1, 1], device: device);

    private static Tensor PerImage(double[] values, Device device) =>
        tensor(values.Select(v => (float)v).ToArray(), [values.Length, 1, 1, 1], device: device);

    private static Tensor Flip(Tensor x, FlipStage stage, Device device)
    {
        if (!stage.Flipped.Any(f => f)) return x;
        return where(PerImage(stage.Flipped, device), x.flip(stage.Vertical ? 2 : 3), x);
    }

    // Output (r, c) of image i reads source (reflect(r + dy), reflect(c + dx)): two gathers with per-image index rows.
    private static Tensor Shift(Tensor x, ShiftStage stage, Device device)
    {
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var rows = new long[b * h];
        var cols = new long[b * w];
        for (int i = 0; i < b; i++)
        {
            for (int r = 0; r < h; r++) rows[i * h + r] = Reflection.Index(r + stage.Dy[i], (int)h);
            for (int col = 0; col < w; col++) cols[i * w + col] = Reflection.Index(col + stage.Dx[i], (int)w);
        }
        var rowIndex = tensor(rows, [b, 1, h, 1], device: device).expand(b, c, h, w);
        var colIndex = tensor(cols, [b, 1, 1, w], device: device).expand(b, c, h, w);
        return x.gather(2, rowIndex).gather(3, colIndex);
    }

    // The maps (output pixel → source pixel) are applied to a grid of pixel coordinates on the device, and the
    // images sampled with grid_sample: bilinear, aligned corners (pixel centres at ±1), reflection about the border
    // pixels' centres, which is the managed sampler's mirror reflection of indices.
    private static Tensor Resample(Tensor x, ResampleStage stage, Device device)
    {
        var moved = Enumerable.Range(0, stage.Maps.Length).Where(i => stage.Maps[i] is not null).ToArray();
        if (moved.Length == 0) return x;
        long h = x.shape[2], w = x.shape[3];
        var matrices = new float[moved.Length * 9];
        for (int k = 0; k < moved.Length; k++)
        {
            var m = stage.Maps[moved[k]]!.Value;
            double[] values = [m.M00, m.M01, m.M02, m.M10, m.M11, m.M12, m.M20, m.M21, m.M22];
            for (int j = 0; j < 9; j++) matrices[k * 9 + j] = (float)values[j];
        }
        var maps = tensor(matrices, [moved.Length, 3, 3], device: device);
        // Homogeneous pixel coordinates (y, x, 1) of every output pixel, row-major: [H·W, 3].
        var ys = arange(h, ScalarType.Float32, device).view(h, 1).expand(h, w);
        var xs = arange(w, ScalarType.Float32, device).view(1, w).expand(h, w);
        var points = stack([ys, xs, ones(h, w, ScalarType.Float32, device)], 2).view(h * w, 3);
        var source = points.matmul(maps.transpose(1, 2));                // [k, H·W, 3]
        var z = source.narrow(2, 2, 1);
        var py = source.narrow(2, 0, 1) / z;
        var px = source.narrow(2, 1, 1) / z;
        // grid_sample's coordinates with aligned corners: −1 at the first pixel's centre, +1 at the last's.
        var gy = h > 1 ? py * (2.0 / (h - 1)) - 1 : py * 0;
        var gx = w > 1 ? px * (2.0 / (w - 1)) - 1 : px * 0;
        var grid = cat([gx, gy], 2).view(moved.Length, h, w, 2);
        var index = tensor(moved.Select(i => (long)i).ToArray(), device: device);
        var sampled = F.grid_sample(x.index_select(0, index), grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Reflection, align_corners: true);
        return x.index_copy(0, index, sampled);
    }

    private static Tensor Lighting(Tensor x, LightingStage stage, Device device)
    {
        if (!stage.Applied.Any(a => a)) return x;
        var mean = x.mean([1, 2, 3], keepdim: true);
        var lit = (x - mean) * PerImage(stage.Scale, device) + mean + PerImage(stage.Shift, device);
        return where(PerImage(stage.Applied, device), lit, x);
    }
}
