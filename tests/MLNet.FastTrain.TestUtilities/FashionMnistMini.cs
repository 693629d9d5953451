using MLNet.FastTrain.Vision.Datasets;

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
        var (imageDims, images) = IdxFile.ReadBytes(RepoPaths.Get("data", "fashion-mnist-mini", $"{split}-images-idx3-ubyte.gz"));
        var (labelDims, labels) = IdxFile.ReadBytes(RepoPaths.Get("data", "fashion-mnist-mini", $"{split}-labels-idx1-ubyte.gz"));
        if (imageDims[0] != labelDims[0]) throw new InvalidDataException($"{split}: {imageDims[0]} images but {labelDims[0]} labels.");
        return (images, labels, imageDims[0]);
    }
}
