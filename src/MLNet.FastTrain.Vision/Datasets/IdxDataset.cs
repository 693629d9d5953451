namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>
/// MNIST-style folders of IDX files: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz] and the t10k-
/// pair, which become the training and validation sets.
/// </summary>
public static class IdxDataset
{
    /// <summary>Fashion-MNIST's class names, in label order.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>True when <paramref name="directory"/> holds a train-images IDX file.</summary>
    public static bool IsIdxFolder(string directory) => Find(directory, "train-images-idx3-ubyte") is not null;

    /// <summary>Loads the training and validation sets of an IDX folder.</summary>
    /// <param name="directory">The folder.</param>
    /// <param name="classes">Class names; default: Fashion-MNIST's when the folder name mentions "fashion", else the digits.</param>
    public static (ImageDataset Train, ImageDataset Valid) Load(string directory, IReadOnlyList<string>? classes = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory)) throw new InvalidDatasetException(directory, "the folder does not exist.");
        classes ??= directory.Contains("fashion", StringComparison.OrdinalIgnoreCase) ? FashionMnistClasses : Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return (LoadSplit(directory, "train", classes), LoadSplit(directory, "t10k", classes));
    }

    private static ImageDataset LoadSplit(string directory, string prefix, IReadOnlyList<string> classes)
    {
        string images = Find(directory, $"{prefix}-images-idx3-ubyte") ?? throw new InvalidDatasetException(Path.Combine(directory, $"{prefix}-images-idx3-ubyte.gz"), "the file does not exist.");
        string labels = Find(directory, $"{prefix}-labels-idx1-ubyte") ?? throw new InvalidDatasetException(Path.Combine(directory, $"{prefix}-labels-idx1-ubyte.gz"), "the file does not exist.");
        var (imageDims, pixels) = IdxFile.ReadBytes(images);
        var (labelDims, labelBytes) = IdxFile.ReadBytes(labels);
        if (imageDims.Length != 3) throw new InvalidDatasetException(images, $"expected 3 dimensions (count, height, width), found {imageDims.Length}.");
        if (labelDims.Length != 1) throw new InvalidDatasetException(labels, $"expected 1 dimension, found {labelDims.Length}.");
        if (labelDims[0] != imageDims[0]) throw new InvalidDatasetException(labels, $"{labelDims[0]} labels for {imageDims[0]} images in '{images}'.");
        var ids = new int[labelBytes.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = labelBytes[i];
            if (ids[i] >= classes.Count) throw new InvalidDatasetException(labels, $"label {ids[i]} at item {i} exceeds the {classes.Count} class names.");
        }
        return new ImageDataset(pixels, ids, 1, imageDims[1], imageDims[2], classes);
    }

    private static string? Find(string directory, string stem)
    {
        foreach (var name in new[] { stem + ".gz", stem })
        {
            string path = Path.Combine(directory, name);
            if (File.Exists(path)) return path;
        }
        return null;
    }
}
