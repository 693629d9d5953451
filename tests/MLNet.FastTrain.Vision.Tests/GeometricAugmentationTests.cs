using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Vision.Transforms;
using Xunit;

namespace MLNet.FastTrain.Vision.Tests;

public class GeometricAugmentationTests
{
    private static Tensor Batch(ulong seed = 1) => Tensor.Uniform([3, 2, 12, 10], -1, 1, new Generator(seed));

    [Fact]
    public void BySizeShiftsAndFlipsSmallImagesAndGivesLargeOnesTheDefaultPreset()
    {
        // Small: every output image is its input flipped or not and moved by at most 2 px (reflected at the borders).
        const int Side = 28;
        var small = Tensor.FromArray(Enumerable.Range(0, 8 * Side * Side).Select(i => (float)i).ToArray(), 8, 1, Side, Side);
        var y = Augmentations.BySize().Apply(small, new Generator(5)).ToArray();
        var x = small.ToArray();
        int moved = 0;
        for (int b = 0; b < 8; b++)
        {
            bool found = false;
            for (int flip = 0; flip < 2 && !found; flip++)
                for (int dy = -2; dy <= 2 && !found; dy++)
                    for (int dx = -2; dx <= 2 && !found; dx++)
                    {
                        bool same = true;
                        for (int r = 0; r < Side && same; r++)
                            for (int c = 0; c < Side && same; c++)
                            {
                                int sc = Reflect(c + dx, Side);
                                if (flip == 1) sc = Side - 1 - sc;
                                same = y[(b * Side + r) * Side + c] == x[(b * Side + Reflect(r + dy, Side)) * Side + sc];
                            }
                        if (same) { found = true; if (dy != 0 || dx != 0 || flip == 1) moved++; }
                    }
            Assert.True(found, $"image {b} is not a flipped, shifted copy of its input");
        }
        Assert.True(moved >= 6, $"only {moved} of 8 images changed");

        // Large: exactly what the default preset draws from the same generator.
        var large = Tensor.FromArray(Enumerable.Range(0, 2 * 3 * 40 * 40).Select(i => MathF.Sin(i * 0.1f)).ToArray(), 2, 3, 40, 40);
        Assert.Equal(Augmentations.Default().Apply(large, new Generator(9)).ToArray(), Augmentations.BySize().Apply(large, new Generator(9)).ToArray());
        Assert.NotEqual(Augmentations.Default().Apply(small, new Generator(5)).ToArray(), y);
    }

    private static int Reflect(int i, int n) => i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;

    [Fact]
    public void HomographySendsTheCornersToTheirTargets()
    {
        (double, double)[] targets = [(-1.2, -0.9), (-0.8, 1.1), (1.1, -1.15), (0.85, 0.95)];
        var h = Homography.FromCorners(targets);
        (double Y, double X)[] corners = [(-1, -1), (-1, 1), (1, -1), (1, 1)];
        for (int k = 0; k < 4; k++)
        {
            var (y, x) = h.Apply(corners[k].Y, corners[k].X);
            Assert.Equal(targets[k].Item1, y, 10);
            Assert.Equal(targets[k].Item2, x, 10);
        }
        var identity = Homography.FromCorners(corners);
        Assert.Equal((0.3, -0.7), identity.Apply(0.3, -0.7));
    }

    [Fact]
    public void NothingDrawnMeansNothingChanges()
    {
        var x = Batch();
        Assert.Equal(x.ToArray(), Augmentations.Warp(0, p: 1).Apply(x, new Generator(1)).ToArray());
        Assert.Equal(x.ToArray(), Augmentations.Geometric(10, 1, 1.1, 0.2, p: 0).Apply(x, new Generator(1)).ToArray());
        Assert.Equal(x.ToArray(), Augmentations.FlipVertical(1).Apply(Augmentations.FlipVertical(1).Apply(x, new Generator(1)), new Generator(2)).ToArray());
        var square = Tensor.Uniform([2, 1, 8, 8], 0, 1, new Generator(4));
        var crop = Augmentations.RandomResizedCrop(1, 1, 1).Apply(square, new Generator(3)).ToArray();
        Assert.Equal(square.ToArray(), crop.Select(v => MathF.Round(v, 5)).ToArray(), (a, b) => Math.Abs(a - b) < 1e-5);
    }

    [Fact]
    public void WarpMovesPixelsDeterministicallyBySeed()
    {
        var x = Batch();
        var warp = Augmentations.Warp(0.3, p: 1);
        var a = warp.Apply(x, new Generator(7)).ToArray();
        Assert.Equal(a, warp.Apply(x, new Generator(7)).ToArray());
        Assert.NotEqual(a, warp.Apply(x, new Generator(8)).ToArray());
        Assert.NotEqual(x.ToArray(), a);
        // A constant image stays constant: the map only moves where samples come from, and borders reflect.
        var flat = Tensor.Full([1, 1, 9, 9], 0.25);
        Assert.All(warp.Apply(flat, new Generator(1)).ToArray(), v => Assert.Equal(0.25f, v, 5));
    }

    [Fact]
    public void VerticalFlipReversesRows()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 6).Select(i => (float)i).ToArray(), 1, 1, 3, 2);
        Assert.Equal([4f, 5, 2, 3, 0, 1], Augmentations.FlipVertical(1).Apply(x, new Generator(1)).ToArray());
    }

    [Fact]
    public void RandomResizedCropKeepsTheSizeAndZoomsIn()
    {
        // A horizontal ramp: any crop narrower than the image has a smaller range of values.
        var ramp = Tensor.FromArray(Enumerable.Range(0, 16 * 16).Select(i => (float)(i % 16)).ToArray(), 1, 1, 16, 16);
        var y = Augmentations.RandomResizedCrop(0.1, 0.75, 1.333).Apply(ramp, new Generator(5));
        Assert.Equal([1, 1, 16, 16], y.ShapeArray());
        var v = y.ToArray();
        Assert.True(v.Max() - v.Min() < 15, $"range {v.Min()}..{v.Max()}");
    }

    [Fact]
    public void TheDefaultPresetIsSeeded()
    {
        var x = Batch();
        var preset = Augmentations.Default();
        Assert.Equal(preset.Apply(x, new Generator(3)).ToArray(), preset.Apply(x, new Generator(3)).ToArray());
    }
}
