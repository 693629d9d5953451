using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.TorchSharp;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>
/// Batches prepared on the torch engine's device from uint8 pixels (docs/design.md §9, "Batches on the device"): the
/// same images the managed kernels make on the host, and the learner hands them over so.
/// </summary>
public sealed class DeviceBatchTests
{
    public static TheoryData<string> Presets => ["none", "flip", "flip-vertical", "pad-crop", "geometric", "warp", "affine", "random-resized-crop", "lighting", "default", "by-size"];

    private static Augmentation? Preset(string name) => name switch
    {
        "none" => null,
        "flip" => Augmentations.Flip(0.5),
        "flip-vertical" => Augmentations.FlipVertical(0.5),
        "pad-crop" => Augmentations.PadCrop(3),
        "geometric" => Augmentations.Geometric(25, 0.8, 1.3, 0.3, p: 0.8),
        "warp" => Augmentations.Warp(0.4, p: 1),
        "affine" => Augmentations.Affine(30, 0.7, 1.4, p: 0.8),
        "random-resized-crop" => Augmentations.RandomResizedCrop(),
        "lighting" => Augmentations.Lighting(0.4, p: 0.7),
        "default" => Augmentations.Default(),
        "by-size" => Augmentations.BySize(),
        _ => throw new ArgumentException(name),
    };

    private static PixelBatch RandomPixels(Augmentation? augmentation, int channels, int height, int width, ulong seed)
    {
        const int Count = 8;
        var g = new Generator(seed);
        var pixels = new byte[Count * channels * height * width];
        // Smooth gradients plus noise: resampling errors show on structure, not only on flat regions.
        for (int i = 0; i < pixels.Length; i++)
        {
            int x = i % width, y = i / width % height;
            pixels[i] = (byte)Math.Clamp(120 + 90 * Math.Sin(0.4 * x + 0.3 * y + i / (width * height)) + 30 * (g.NextDouble() - 0.5), 0, 255);
        }
        float[] mean = [.. Enumerable.Range(0, channels).Select(c => 0.4f + 0.05f * c)];
        float[] std = [.. Enumerable.Range(0, channels).Select(c => 0.25f + 0.03f * c)];
        var plan = augmentation?.Plan(Count, channels, height, width, new Generator(seed + 1));
        return new PixelBatch(pixels, Count, channels, height, width, mean, std, plan);
    }

    [Theory]
    [MemberData(nameof(Presets))]
    public void The_device_prepares_what_the_managed_kernels_make(string preset)
    {
        foreach (var (c, h, w) in new[] { (3, 20, 27), (1, 28, 28), (3, 40, 36) })
        {
            var pixels = RandomPixels(Preset(preset), c, h, w, seed: (ulong)(c * 100 + h));
            var host = pixels.ToImages().ToArray();
            var device = Host(DeviceBatches.Prepare(pixels, global::TorchSharp.torch.CPU));
            Assert.Equal(host.Length, device.Length);
            double worst = host.Zip(device, (a, b) => Math.Abs((double)a - b)).Max();
            // Normalised values span about ±2.5; float32 coordinates on the device against doubles on the host.
            Assert.True(worst < 2e-4, $"{preset} {c}×{h}×{w}: the device differs from the host by {worst:g3}.");
        }
    }

    [Fact]
    public void A_plan_whose_every_stage_moves_something_changes_the_batch_on_the_device()
    {
        // Guards the comparison above against a device path that ignores stages and a host path that does too.
        var plain = Host(DeviceBatches.Prepare(RandomPixels(null, 3, 20, 27, 5), global::TorchSharp.torch.CPU));
        var moved = Host(DeviceBatches.Prepare(RandomPixels(Augmentations.Compose(Augmentations.Flip(1), Augmentations.Warp(0.3, p: 1), Augmentations.Lighting(0.3, p: 1)), 3, 20, 27, 5), global::TorchSharp.torch.CPU));
        Assert.True(plain.Zip(moved, (a, b) => Math.Abs(a - b)).Max() > 0.5);
    }

    [Fact]
    public void The_learner_hands_pixels_to_the_torch_engine_and_trains_as_on_host_batches()
    {
        var onDevice = TorchLearner(Augmentations.Default());
        var handedOver = new List<bool>();
        onDevice.Add(new AfterLossProbe(l => handedOver.Add(l.CurrentBatch!.Pixels is not null && !l.CurrentBatch.HasImages)));
        onDevice.Fit(1);

        // The same augmentation as a function runs on the host, drawing the same choices from the same generator.
        var augmentation = Augmentations.Default();
        var onHost = TorchLearner(BatchTransform.Of(augmentation.Apply));
        onHost.Fit(1);

        Assert.NotEmpty(handedOver);
        Assert.All(handedOver, Assert.True);
        var a = onDevice.Engine.ModelState();
        var b = onHost.Engine.ModelState();
        foreach (var (name, t) in a)
        {
            var x = t.ToArray();
            var y = b[name].ToArray();
            double diff = Math.Sqrt(x.Zip(y, (p, q) => (double)(p - q) * (p - q)).Sum());
            double norm = Math.Sqrt(x.Sum(p => (double)p * p));
            Assert.True(diff <= 1e-3 * Math.Max(norm, 1e-2), $"{name}: {diff:g3} apart (norm {norm:g3}).");
        }
        Assert.Equal(onHost.LastValidation!.Metrics["accuracy"], onDevice.LastValidation!.Metrics["accuracy"], 2);
    }

    [Fact]
    public void A_loader_with_a_function_transform_keeps_host_batches_on_the_torch_engine()
    {
        var learner = TorchLearner(BatchTransform.Of((x, _) => x));
        var pixels = new List<bool>();
        learner.Add(new AfterLossProbe(l => pixels.Add(l.CurrentBatch!.Pixels is not null)));
        learner.Fit(1);
        Assert.NotEmpty(pixels);
        Assert.All(pixels, Assert.False);
    }

    private static Learner TorchLearner(BatchTransform augmentation, bool prepareOnDevice = true)
    {
        Generator.Default.ManualSeed(7);
        var (train, valid) = TestData.Loaders();
        train.BatchTransform = augmentation;
        var net = TestData.TinyNet(3);
        return new Learner(net, train, valid, new Sgd(net.Parameters(), 0.02, momentum: 0.9))
            .UseEngine((m, o) => new TorchEngine(m, o, "cpu", threads: 2) { PrepareOnDevice = prepareOnDevice });
    }

    private static float[] Host(global::TorchSharp.torch.Tensor t)
    {
        using var cpu = t.contiguous();
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(cpu.bytes).ToArray();
    }

    private sealed class AfterLossProbe(Action<Learner> probe) : Callback
    {
        public override void AfterLoss(Learner learner) => probe(learner);
    }
}
