using System.Buffers.Binary;
using System.IO.Compression;

namespace MLNet.FastTrain.TestUtilities;

/// <summary>
/// The seeded Fashion-MNIST subset bundled under data/ (made by make_fashion_mnist_mini.py):
/// images as bytes [N, 28, 28] and labels.
/// </summary>
public static class FashionMnistMini
{
    /// <summary>Loads "train" or "t10k".</summary>
    public static (byte[] Images, byte[] Labels, int Count) Load(string split)
    {
        var images = ReadIdx(RepoPaths.Get("data", "fashion-mnist-mini", $"{split}-images-idx3-ubyte.gz"), out var imageDims);
        var labels = ReadIdx(RepoPaths.Get("data", "fashion-mnist-mini", $"{split}-labels-idx1-ubyte.gz"), out var labelDims);
        if (imageDims[0] != labelDims[0]) throw new InvalidDataException($"{split}: {imageDims[0]} images but {labelDims[0]} labels.");
        return (images, labels, imageDims[0]);
    }

    private static byte[] ReadIdx(string path, out int[] dims)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        var data = ms.ToArray();
        int rank = data[3];
        dims = new int[rank];
        for (int i = 0; i < rank; i++) dims[i] = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4 + 4 * i));
        return data[(4 + 4 * rank)..];
    }
}
