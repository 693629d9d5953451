using System.Buffers.Binary;
using System.IO.Compression;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Encoders;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class PngEncoderTests
{
    /// <summary>Reads the file back chunk by chunk, checking every CRC, and undoes the None/Up filters.</summary>
    private static (int Width, int Height, int ColorType, byte[] Pixels) Decode(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        int pos = 8, width = 0, height = 0, colorType = 0;
        var idat = new MemoryStream();
        var types = new List<string>();
        while (pos < png.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            var typeAndData = png.AsSpan(pos + 4, 4 + length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + length));
            Assert.Equal(Crc32.Compute(typeAndData), crc);
            string type = System.Text.Encoding.ASCII.GetString(typeAndData[..4]);
            types.Add(type);
            var data = typeAndData[4..];
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]);
                colorType = data[9];
            }
            if (type == "IDAT") idat.Write(data);
            pos += 12 + length;
        }
        Assert.Equal(["IHDR", "IDAT", "IEND"], types);
        int channels = colorType == 0 ? 1 : 3, stride = width * channels;
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        var bytes = raw.ToArray();
        Assert.Equal(height * (stride + 1), bytes.Length);
        var pixels = new byte[height * stride];
        for (int y = 0; y < height; y++)
        {
            byte filter = bytes[y * (stride + 1)];
            Assert.True(filter is 0 or 2, $"filter {filter}");
            for (int i = 0; i < stride; i++)
            {
                byte v = bytes[y * (stride + 1) + 1 + i];
                pixels[y * stride + i] = filter == 2 ? (byte)(v + pixels[(y - 1) * stride + i]) : v;
            }
        }
        return (width, height, colorType, pixels);
    }

    [Theory]
    [InlineData(1, 7, 5)]
    [InlineData(3, 4, 9)]
    [InlineData(1, 1, 1)]
    public void Encoded_pixels_come_back_exactly(int channels, int width, int height)
    {
        var g = new MLNet.FastTrain.Engine.Generator((ulong)(width * height));
        var pixels = Enumerable.Range(0, width * height * channels).Select(i => (byte)(i % 3 == 0 ? g.NextInt(256) : (i * 7) % 256)).ToArray();
        var (w, h, colorType, decoded) = Decode(PngEncoder.Encode(pixels, width, height, channels));
        Assert.Equal((width, height, channels == 1 ? 0 : 2), (w, h, colorType));
        Assert.Equal(pixels, decoded);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PngEncoder.Encode(new byte[8], 2, 2, 2));
        Assert.Throws<ArgumentException>(() => PngEncoder.Encode(new byte[5], 2, 2, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PngEncoder.Encode([], 0, 2, 1));
    }

    [Fact]
    public void Batch_grid_shows_the_batch_with_normalisation_undone()
    {
        string path = Path.Combine(Path.GetTempPath(), $"grid-{Guid.NewGuid():N}.png");
        try
        {
            var loader = new DataLoader(TestData.Train, 4, shuffle: false);
            var labels = BatchGrid.Save(loader, path, count: 4);
            Assert.Equal(Enumerable.Range(0, 4).Select(i => TestData.Train.Classes[TestData.Train.LabelOf(i)]), labels);
            var (w, h, _, pixels) = Decode(File.ReadAllBytes(path));
            Assert.Equal((2 * 30 + 2, 2 * 30 + 2), (w, h));
            // The first cell is the first image, back to its original bytes (within rounding).
            var original = TestData.Train.Pixels(0);
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++) Assert.InRange(pixels[(2 + y) * w + 2 + x] - original[y * 28 + x], -1, 1);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
