using MLNet.FastTrain.Engine;
using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class AugmentationTests
{
    private static Tensor Batch() => Tensor.Normal([4, 2, 6, 5], generator: new Generator(9));

    [Theory]
    [InlineData(-1, 5, 1)]
    [InlineData(-2, 5, 2)]
    [InlineData(5, 5, 3)]
    [InlineData(6, 5, 2)]
    [InlineData(0, 1, 0)]
    [InlineData(3, 1, 0)]
    public void Reflection_mirrors_about_the_edges(int i, int n, int expected) => Assert.Equal(expected, Reflection.Index(i, n));

    [Fact]
    public void Flip_always_mirrors_rows_and_never_touches_with_p_zero()
    {
        var x = Batch();
        var flipped = Augmentations.Flip(1.0).Apply(x, new Generator(1));
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 5; c++) Assert.Equal(x[1, 1, r, c], flipped[1, 1, r, 4 - c]);
        Assert.Equal(x.ToArray(), Augmentations.Flip(0.0).Apply(x, new Generator(1)).ToArray());
        Assert.Equal(x.ToArray(), Augmentations.Flip(1.0).Apply(flipped, new Generator(2)).ToArray());
    }

    [Fact]
    public void Identity_settings_leave_images_alone()
    {
        var x = Batch();
        Assert.Equal(x.ToArray(), Augmentations.Affine(0, 1, 1, p: 1).Apply(x, new Generator(1)).ToArray());
        Assert.Equal(x.ToArray(), Augmentations.Affine(10, 1, 1.1, p: 0).Apply(x, new Generator(1)).ToArray());
        Assert.Equal(x.ToArray(), Augmentations.PadCrop(0).Apply(x, new Generator(1)).ToArray());
        Assert.Equal(x.ToArray(), Augmentations.Lighting(0.2, p: 0).Apply(x, new Generator(1)).ToArray());
    }

    [Fact]
    public void Same_seed_same_augmented_batch_different_seed_different_batch()
    {
        var x = Batch();
        var t = Augmentations.Compose(Augmentations.Default(), Augmentations.PadCrop(2));
        Assert.Equal(t.Apply(x, new Generator(5)).ToArray(), t.Apply(x, new Generator(5)).ToArray());
        Assert.NotEqual(t.Apply(x, new Generator(5)).ToArray(), t.Apply(x, new Generator(6)).ToArray());
        Assert.Equal(x.ShapeArray(), t.Apply(x, new Generator(5)).ShapeArray());
        Assert.Throws<ArgumentException>(() => t.Apply(Tensor.Zeros(3, 3), new Generator(1)));
    }

    [Fact]
    public void Zoom_magnifies_about_the_centre()
    {
        // A horizontal ramp: zooming ×2 about the centre halves the slope and keeps the centre value.
        var x = Tensor.Zeros(1, 1, 9, 9);
        for (int r = 0; r < 9; r++) for (int c = 0; c < 9; c++) x[0, 0, r, c] = c;
        var z = Augmentations.Affine(0, 2, 2, p: 1).Apply(x, new Generator(1));
        Assert.Equal(4.0, z[0, 0, 4, 4], 5);
        Assert.Equal(0.5, z[0, 0, 4, 5] - z[0, 0, 4, 4], 5);
    }

    [Fact]
    public void Lighting_changes_brightness_and_contrast_within_bounds()
    {
        var x = Batch();
        var y = Augmentations.Lighting(0.2, p: 1).Apply(x, new Generator(3));
        for (int i = 0; i < 4; i++)
        {
            var a = x.Narrow(i, 1).ToArray();
            var b = y.Narrow(i, 1).ToArray();
            double shift = b.Average() - a.Average();
            Assert.InRange(shift, -0.2001, 0.2001);
            double ratio = Std(b) / Std(a);
            Assert.InRange(ratio, 1 / 1.2 - 1e-4, 1.2 + 1e-4);
        }
        static double Std(float[] v) { double m = v.Average(); return Math.Sqrt(v.Average(t => (t - m) * (t - m))); }
    }

    [Fact]
    public void Loader_applies_the_batch_transform_reproducibly()
    {
        var (train, _) = IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini"));
        var loader = new DataLoader(train, 16, shuffle: false, seed: 1) { BatchTransform = Augmentations.Flip(1.0) };
        var plain = new DataLoader(train, 16, shuffle: false, seed: 1).Epoch(0).First().Images;
        var flipped = loader.Epoch(0).First().Images;
        Assert.Equal(plain[3, 0, 10, 2], flipped[3, 0, 10, 25]);
        Assert.Equal(flipped.ToArray(), loader.Epoch(0).First().Images.ToArray());
    }

    [Fact]
    public void A_loader_handing_over_pixels_gives_the_same_images_and_draws_as_one_handing_over_floats()
    {
        var (train, _) = IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini"));
        DataLoader Loader(bool pixels) => new(train, 16, shuffle: true, seed: 4) { BatchTransform = Augmentations.Default(), HandOverPixels = pixels };
        var floats = Loader(false).Epoch(2).Take(3).ToList();
        var pixels = Loader(true).Epoch(2).Take(3).ToList();
        for (int b = 0; b < 3; b++)
        {
            Assert.True(floats[b].HasImages);
            Assert.Null(floats[b].Pixels);
            Assert.False(pixels[b].HasImages);                  // nothing is normalised until someone reads the images
            Assert.NotNull(pixels[b].Pixels!.Augmentation);
            Assert.Equal(floats[b].Labels, pixels[b].Labels);
            Assert.Equal(floats[b].Images.ToArray(), pixels[b].Images.ToArray());
        }
    }

    [Fact]
    public void Resized_pixels_are_the_float_resize_rounded_to_whole_levels()
    {
        var (train, _) = IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini"));
        DataLoader Loader(bool pixels) => new(train, 8, shuffle: false) { ImageSize = (19, 23), HandOverPixels = pixels };
        var floats = Loader(false).Epoch(0).First();
        var pixels = Loader(true).Epoch(0).First();
        Assert.Equal([8, 1, 19, 23], pixels.Images.ShapeArray());
        var (_, std) = Loader(false).Normalization;
        double halfLevel = 0.5 / 255 / std[0];
        var diff = floats.Images.ToArray().Zip(pixels.Images.ToArray(), (a, b) => Math.Abs(a - b)).ToArray();
        Assert.True(diff.Max() <= halfLevel * 1.001, $"{diff.Max()} > {halfLevel}");
        Assert.True(diff.Max() > 0);                            // area averaging does leave fractions to round
    }

    [Fact]
    public void A_function_transform_keeps_host_images_even_when_pixels_are_asked_for()
    {
        var (train, _) = IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini"));
        var loader = new DataLoader(train, 16, shuffle: false) { BatchTransform = BatchTransform.Of((x, _) => x), HandOverPixels = true };
        var batch = loader.Epoch(0).First();
        Assert.Null(batch.Pixels);
        Assert.True(batch.HasImages);
    }

    [Fact]
    public void A_plan_refuses_images_of_another_shape_and_a_pixel_batch_checks_its_sizes()
    {
        var plan = Augmentations.Flip().Plan(2, 1, 4, 4, new Generator(1));
        Assert.Throws<ArgumentException>(() => plan.Apply(Tensor.Zeros(3, 1, 4, 4)));
        Assert.Throws<ArgumentException>(() => new PixelBatch(new byte[31], 2, 1, 4, 4, [0.5f], [0.2f], null));
        Assert.Throws<ArgumentException>(() => new PixelBatch(new byte[32], 2, 1, 4, 4, [0.5f, 0.5f], [0.2f], null));
        Assert.Throws<ArgumentException>(() => new PixelBatch(new byte[32], 2, 1, 4, 4, [0.5f], [0.2f], Augmentations.Flip().Plan(2, 1, 4, 5, new Generator(1))));
        Assert.Throws<ArgumentException>(() => new Batch(new PixelBatch(new byte[32], 2, 1, 4, 4, [0.5f], [0.2f], null), [1]));
    }
}
