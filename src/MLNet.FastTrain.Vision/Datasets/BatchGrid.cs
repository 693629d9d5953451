using MLNet.FastTrain.Vision.Encoders;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>Renders a batch as a grid image, so a user can see what the model sees (augmentation included).</summary>
public static class BatchGrid
{
    /// <summary>
    /// Writes the first <paramref name="count"/> images of a loader's first batch of <paramref name="epoch"/> as a PNG
    /// grid (normalisation undone, a 2-pixel gap between cells), and returns their labels in grid order.
    /// </summary>
    public static IReadOnlyList<string> Save(DataLoader loader, string path, int count = 16, int epoch = 0)
    {
        ArgumentNullException.ThrowIfNull(loader);
        var batch = loader.Epoch(epoch).First();
        int n = Math.Min(count, batch.Labels.Length);
        int c = batch.Images.Size(1), h = batch.Images.Size(2), w = batch.Images.Size(3);
        int columns = (int)Math.Ceiling(Math.Sqrt(n)), rows = (n + columns - 1) / columns, gap = 2;
        int gridW = columns * (w + gap) + gap, gridH = rows * (h + gap) + gap;
        int outChannels = c == 1 ? 1 : 3;
        var pixels = new byte[gridW * gridH * outChannels];
        Array.Fill(pixels, (byte)255);
        var (mean, std) = loader.Normalization;
        var values = batch.Images.ToArray();
        for (int i = 0; i < n; i++)
        {
            int x0 = gap + (i % columns) * (w + gap), y0 = gap + (i / columns) * (h + gap);
            for (int ch = 0; ch < outChannels; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        float v = values[((i * c + ch) * h + y) * w + x] * std[ch] + mean[ch];
                        pixels[((y0 + y) * gridW + x0 + x) * outChannels + ch] = (byte)Math.Clamp(MathF.Round(v * 255f), 0, 255);
                    }
        }
        PngEncoder.Save(path, pixels, gridW, gridH, outChannels);
        return batch.Labels.Take(n).Select(l => loader.Dataset.Classes[l]).ToArray();
    }
}
