using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.MLNet;

/// <summary>What kind of value the feature column holds.</summary>
internal enum ImageInputKind
{
    Bytes,
    Image,
    Pixels,
}

/// <summary>
/// The feature column and how it becomes planar float pixels in [0, 1] (or, for pixel columns, in their own scale):
/// the preprocessing estimators that go into a fitted model, and the reading of a data view into an
/// <see cref="ImageDataset"/> through those same estimators.
/// </summary>
internal sealed class ImageInput
{
    internal const string ResizedColumn = "FastTrainResized";
    internal const string GreyColumn = "FastTrainGrey";
    internal const string PixelsColumn = "FastTrainPixels";

    private ImageInput(ImageInputKind kind, string column, int channels, int height, int width)
    {
        Kind = kind;
        Column = column;
        Channels = channels;
        Height = height;
        Width = width;
    }

    /// <summary>An image column of a known kind, brought to a known size (for models trained outside a data view).</summary>
    public static ImageInput ForSize(ImageInputKind kind, string column, int channels, int height, int width) => new(kind, column, channels, height, width);

    public ImageInputKind Kind { get; }

    public string Column { get; }

    public int Channels { get; }

    public int Height { get; }

    public int Width { get; }

    /// <summary>What pixel values are multiplied by to reach [0, 1]: 1/255 for 0–255 pixel columns, otherwise 1.</summary>
    public float PixelScale { get; private set; } = 1f;

    /// <summary>The column the ONNX graph reads.</summary>
    public string GraphInput => Kind == ImageInputKind.Pixels ? Column : PixelsColumn;

    /// <summary>The temporary columns the preprocessing adds (dropped at the end of a fitted model).</summary>
    public IEnumerable<string> TemporaryColumns => Kind switch
    {
        ImageInputKind.Bytes => [DecodeImageMapping.InputColumn, DecodeImageMapping.OutputColumn, ResizedColumn, .. Channels == 1 ? [GreyColumn] : Array.Empty<string>(), PixelsColumn],
        ImageInputKind.Image => [ResizedColumn, .. Channels == 1 ? [GreyColumn] : Array.Empty<string>(), PixelsColumn],
        _ => [],
    };

    /// <summary>Checks the feature column's type (schema only, before any data is read).</summary>
    public static ImageInputKind Classify(SchemaShape schema, string column)
    {
        if (SchemaShapes.Find(schema, column) is not { } col)
            throw new SchemaMismatchException(column, $"The feature column '{column}' is not in the data; load images into it with LoadRawImageBytes or LoadImages, or set FeatureColumnName.");
        if (col.ItemType == NumberDataViewType.Byte && col.Kind is SchemaShape.Column.VectorKind.VariableVector or SchemaShape.Column.VectorKind.Vector)
            return ImageInputKind.Bytes;
        if (col.ItemType is ImageDataViewType && col.Kind == SchemaShape.Column.VectorKind.Scalar) return ImageInputKind.Image;
        if (col.ItemType == NumberDataViewType.Single && col.Kind == SchemaShape.Column.VectorKind.Vector) return ImageInputKind.Pixels;
        string hint = col.ItemType is TextDataViewType ? " It holds text: if these are file paths, load the images with LoadRawImageBytes or LoadImages first." : "";
        throw new SchemaMismatchException(column,
            $"Schema mismatch for feature column '{column}': expected raw image bytes (VarVector<Byte>), an image, or a known-size vector of Single pixels; got {Describe(col)}.{hint}");
    }

    private static string Describe(SchemaShape.Column col) => col.Kind switch
    {
        SchemaShape.Column.VectorKind.Scalar => col.ItemType.ToString() ?? "",
        SchemaShape.Column.VectorKind.Vector => $"Vector<{col.ItemType}>",
        _ => $"VarVector<{col.ItemType}>",
    };

    /// <summary>Settles channels and size from the options and the first rows of the training data.</summary>
    public static ImageInput Create(IDataView data, string column, ImageClassifierOptions options, int? defaultSize = null)
    {
        var kind = Classify(SchemaShapes.Of(data.Schema), column);
        if (kind == ImageInputKind.Pixels) return FromPixelColumn(data, column, options);
        if (options.ImageSize is < 1) throw new ArgumentOutOfRangeException(nameof(options), $"ImageSize must be positive, not {options.ImageSize}.");
        var first = FirstImages(data, column, kind, 16);
        if (first.Count == 0) throw new TrainingDataException($"The training data has no row with an image in column '{column}'.");
        int side = options.ImageSize ?? defaultSize ?? (first[0].Width <= 64 && first[0].Height <= 64 ? Math.Max(first[0].Width, first[0].Height) : 64);
        bool grey = options.ColorMode switch
        {
            ColorMode.Grey => true,
            ColorMode.Rgb => false,
            _ => first.All(f => f.Grey),
        };
        return new ImageInput(kind, column, grey ? 1 : 3, side, side);
    }

    private static ImageInput FromPixelColumn(IDataView data, string column, ImageClassifierOptions options)
    {
        var type = (VectorDataViewType)data.Schema[column].Type;
        int c, h, w;
        if (type.Dimensions.Length == 3) (c, h, w) = (type.Dimensions[0], type.Dimensions[1], type.Dimensions[2]);
        else if (IsSquare(type.Size, out int s1)) (c, h, w) = (1, s1, s1);
        else if (type.Size % 3 == 0 && IsSquare(type.Size / 3, out int s3)) (c, h, w) = (3, s3, s3);
        else throw new SchemaMismatchException(column, $"The pixel column '{column}' has {type.Size} values and no [channels, height, width] dimensions; extract it with ExtractPixels, or make it a square grey or RGB image.");
        if (c is not (1 or 3)) throw new SchemaMismatchException(column, $"The pixel column '{column}' has {c} channels; expected 1 (grey) or 3 (RGB, planar as ExtractPixels writes).");
        if (options.ImageSize is int size && (size != h || size != w))
            throw new ArgumentException($"ImageSize {size}: the pixel column '{column}' holds {h} × {w} images, whose size is fixed; resize the images before ExtractPixels.", nameof(options));
        return new ImageInput(ImageInputKind.Pixels, column, c, h, w);

        static bool IsSquare(int n, out int side)
        {
            side = (int)Math.Round(Math.Sqrt(n));
            return side > 0 && side * side == n;
        }
    }

    /// <summary>Size and greyness of up to <paramref name="count"/> images from the first rows, skipping those that cannot be decoded.</summary>
    private static List<(int Width, int Height, bool Grey)> FirstImages(IDataView data, string column, ImageInputKind kind, int count)
    {
        var found = new List<(int, int, bool)>();
        using var cursor = data.GetRowCursor([data.Schema[column]]);
        if (kind == ImageInputKind.Bytes)
        {
            var getter = cursor.GetGetter<VBuffer<byte>>(data.Schema[column]);
            VBuffer<byte> value = default;
            while (found.Count < count && cursor.MoveNext())
            {
                getter(ref value);
                if (!DecodeImageMapping.TryOpen(value.DenseValues().ToArray(), out var image)) continue;
                using (image) found.Add((image.Width, image.Height, IsGrey(image)));
            }
        }
        else
        {
            // The cursor owns the images it hands out: read them before it moves on.
            var getter = cursor.GetGetter<MLImage?>(data.Schema[column]);
            MLImage? value = null;
            while (found.Count < count && cursor.MoveNext())
            {
                try { getter(ref value); }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException) { continue; }
                if (value is not null) found.Add((value.Width, value.Height, IsGrey(value)));
            }
        }
        return found;
    }

    /// <summary>True when every pixel has equal red, green and blue.</summary>
    private static bool IsGrey(MLImage image)
    {
        var pixels = image.Pixels;
        int step = image.BitsPerPixel / 8;
        if (step < 3) return true;
        for (int i = 0; i + 2 < pixels.Length; i += step)
        {
            if (pixels[i] != pixels[i + 1] || pixels[i + 1] != pixels[i + 2]) return false;
        }
        return true;
    }

    /// <summary>
    /// The estimators that turn the feature column into the graph's planar float pixels in [0, 1]: decode (raw bytes
    /// only), resize (shorter side to the size, centre crop), grey when one channel, extract. None for pixel columns.
    /// The <paramref name="tolerant"/> form, for reading training data only, turns undecodable bytes into a
    /// placeholder instead of throwing: ML.NET computes rows ahead on worker threads, where an exception would end
    /// the whole read, so <see cref="Read"/> checks each row's bytes itself.
    /// </summary>
    public IEstimator<ITransformer>? Preprocessing(MLContext ml, bool tolerant = false)
    {
        if (Kind == ImageInputKind.Pixels) return null;
        IEstimator<ITransformer> chain = new EstimatorChain<ITransformer>();
        string image = Column;
        if (Kind == ImageInputKind.Bytes)
        {
            DecodeImageMapping.EnsureImageTypeRegistered();
            chain = chain.Append(ml.Transforms.CopyColumns(DecodeImageMapping.InputColumn, Column))
                .Append<ITransformer>(ml.Transforms.CustomMapping(tolerant ? DecodeImageMapping.DecodeOrPlaceholder : new DecodeImageMapping().GetMapping(), DecodeImageMapping.ContractName));
            image = DecodeImageMapping.OutputColumn;
        }
        chain = chain.Append<ITransformer>(ml.Transforms.ResizeImages(ResizedColumn, Width, Height, image, ImageResizingEstimator.ResizingKind.IsoCrop));
        string source = ResizedColumn;
        var colours = ImagePixelExtractingEstimator.ColorBits.Rgb;
        if (Channels == 1)
        {
            chain = chain.Append<ITransformer>(ml.Transforms.ConvertToGrayscale(GreyColumn, ResizedColumn));
            source = GreyColumn;
            colours = ImagePixelExtractingEstimator.ColorBits.Red;
        }
        return chain.Append<ITransformer>(ml.Transforms.ExtractPixels(PixelsColumn, source, colours, scaleImage: 1f / 255));
    }

    /// <summary>
    /// Reads images and labels through the fitted preprocessing. Rows whose image cannot be decoded stop the read
    /// with <see cref="InvalidImageException"/>, or with <paramref name="skipInvalid"/> are left out and listed in
    /// <paramref name="skipped"/>.
    /// </summary>
    public ImageDataset Read(IDataView prepared, string labelColumn, string? pathColumn, IReadOnlyList<string> classes, bool skipInvalid, List<string> skipped, bool learnScale)
    {
        var pixelsCol = prepared.Schema[GraphInput];
        var labelCol = prepared.Schema[labelColumn];
        DataViewSchema.Column? pathCol = pathColumn is not null && prepared.Schema.GetColumnOrNull(pathColumn) is { } pc && pc.Type is TextDataViewType ? pc : null;
        var columns = new List<DataViewSchema.Column> { pixelsCol, labelCol };
        if (pathCol is not null) columns.Add(pathCol.Value);
        var bytesCol = Kind == ImageInputKind.Bytes ? prepared.Schema[Column] : (DataViewSchema.Column?)null;
        if (bytesCol is not null) columns.Add(bytesCol.Value);
        using var cursor = prepared.GetRowCursor(columns);
        var pixelGetter = cursor.GetGetter<VBuffer<float>>(pixelsCol);
        var labelGetter = cursor.GetGetter<uint>(labelCol);
        var pathGetter = pathCol is null ? null : cursor.GetGetter<ReadOnlyMemory<char>>(pathCol.Value);
        var bytesGetter = bytesCol is null ? null : cursor.GetGetter<VBuffer<byte>>(bytesCol.Value);
        VBuffer<byte> encoded = default;
        int size = Channels * Height * Width;
        var labels = new List<int>();
        VBuffer<float> pixels = default;
        ReadOnlyMemory<char> path = default;
        uint key = 0;
        // Pixel columns come in ExtractPixels' default scale (0–255) or already scaled to [0, 1]; the training set
        // says which (so its rows wait as floats until all are seen), and the validation set follows it. Every other
        // read knows its scale and stores bytes as it goes.
        bool scaleUnknown = learnScale && Kind == ImageInputKind.Pixels;
        var pending = new List<float[]>();
        var data = new List<byte>();
        float max = 0;
        while (cursor.MoveNext())
        {
            long row = cursor.Position;
            string? Path() { if (pathGetter is null) return null; pathGetter(ref path); return path.ToString(); }
            labelGetter(ref key);
            if (key == 0 || key > classes.Count)
                throw new TrainingDataException($"Row {row} of the label column '{labelColumn}' has a missing key (a value the key mapping did not know); filter such rows out or map every label with MapValueToKey.");
            Exception? fault = null;
            if (bytesGetter is not null)
            {
                bytesGetter(ref encoded);
                fault = DecodeImageMapping.Check(encoded.DenseValues().ToArray());
            }
            if (fault is null)
            {
                try { pixelGetter(ref pixels); }
                catch (Exception e) when (e is InvalidDataException or InvalidOperationException or ArgumentException or IOException) { fault = e; }
            }
            if (fault is not null)
            {
                var error = new InvalidImageException(row, Column, Path(), fault);
                if (!skipInvalid) throw error;
                skipped.Add(error.Message);
                continue;
            }
            if (pixels.Length != size)
                throw new InvalidImageException(row, Column, Path(), new InvalidDataException($"{pixels.Length} pixel values where {size} were expected"));
            if (scaleUnknown)
            {
                var values = pixels.DenseValues().ToArray();
                foreach (var v in values) max = Math.Max(max, v);
                pending.Add(values);
            }
            else AppendBytes(data, pixels.DenseValues(), 255f * PixelScale);
            labels.Add((int)key - 1);
        }
        if (scaleUnknown)
        {
            PixelScale = max > 1.0001f ? 1f / 255 : 1f;
            foreach (var values in pending) AppendBytes(data, values, 255f * PixelScale);
        }
        return new ImageDataset([.. data], [.. labels], Channels, Height, Width, classes);

        static void AppendBytes(List<byte> target, IEnumerable<float> values, float toBytes)
        {
            foreach (var v in values) target.Add((byte)Math.Clamp(MathF.Round(v * toBytes), 0, 255));
        }
    }
}
