using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Decoders;

namespace MLNet.FastTrain.Fuzzing;

/// <summary>
/// Every parser that reads a user's file, as a fuzz target: one input in, and the parser either reads it or refuses
/// it with its own typed error. Anything else (another exception, a crash, a hang, an allocation the file's size does
/// not justify) escapes and is what the fuzzer reports. Shared by the AFL++ harness (fuzz/MLNet.FastTrain.Fuzz) and
/// the regression test that replays the committed corpus (fuzz/corpus/TARGET/).
/// </summary>
public static class FuzzTargets
{
    /// <summary>The targets, by name: the four image decoders, the format sniffer, IDX, CSV lists, model files, checkpoints and ONNX.</summary>
    public static IReadOnlyList<string> Names { get; } = ["png", "jpeg", "bmp", "pnm", "image", "idx", "csv", "ftm", "checkpoint", "onnx"];

    // Limits a fuzzer's inputs cannot argue with: decoders refuse images above 16 megapixels before allocating them.
    // Made per call, not in a static initialiser: under AFL++ no instrumented code may run before SharpFuzz has
    // attached the coverage map, and the harness touches this class before that.
    private static DecoderLimits Limits => new() { MaxPixels = 16L << 20, MaxSide = 16384 };

    /// <summary>Runs <paramref name="data"/> through <paramref name="target"/>; <paramref name="scratch"/> is a folder for the parsers that read paths.</summary>
    public static void Run(string target, byte[] data, string scratch)
    {
        ArgumentNullException.ThrowIfNull(data);
        try
        {
            switch (target)
            {
                case "png": PngDecoder.Decode(data, "fuzz.png", Limits); break;
                // The scale (1, 1/2, 1/4 or 1/8) follows the input's length, so each input always decodes one way and
                // campaigns reach the reduced transforms too.
                case "jpeg": JpegDecoder.Decode(data, "fuzz.jpg", Limits, scale: 1 << (data.Length & 3)); break;
                case "bmp": BmpDecoder.Decode(data, "fuzz.bmp", Limits); break;
                case "pnm": PnmDecoder.Decode(data, "fuzz.pnm", Limits); break;
                case "image": ImageDecoder.Decode(data, "fuzz.img", Limits); break;
                case "idx": IdxFile.ReadBytes(Write(scratch, "fuzz-idx3-ubyte", data)); break;
                case "csv": ReadCsv(scratch, data); break;
                case "ftm": TrainedModel.Load(Write(scratch, "fuzz.ftm", data)); break;
                case "checkpoint": Checkpoint.Load(Write(scratch, "fuzz.ftc", data)); break;
                case "onnx": OnnxImporter.Load(Write(scratch, "fuzz.onnx", data)); break;
                default: throw new ArgumentException($"Unknown fuzz target '{target}': use one of {string.Join(", ", Names)}.", nameof(target));
            }
        }
        catch (Exception e) when (IsRefusal(target, e))
        {
            // The parser said no, in its own words: the outcome a hostile file should get.
        }
    }

    /// <summary>Whether <paramref name="e"/> is the typed error <paramref name="target"/> is documented to throw for a bad file.</summary>
    public static bool IsRefusal(string target, Exception e) => target switch
    {
        "png" or "jpeg" or "bmp" or "pnm" or "image" => e is InvalidImageException,
        "idx" => e is InvalidDatasetException,
        "csv" => e is InvalidDatasetException or InvalidImageException,
        "ftm" or "checkpoint" => e is ModelFileException,
        "onnx" => e is OnnxFormatException or UnsupportedOnnxModelException,
        _ => false,
    };

    // A CSV list of image,label rows beside one valid image, so that rows naming it get past the file lookup.
    private static void ReadCsv(string scratch, byte[] data)
    {
        string image = Path.Combine(scratch, "a.pgm");
        if (!File.Exists(image)) File.WriteAllBytes(image, [.. "P5 2 2 255\n"u8, 0, 64, 128, 255]);
        ImageFiles.LoadCsv(Write(scratch, "fuzz.csv", data), new ImageFiles.Options { Size = 8, Limits = Limits });
    }

    private static string Write(string scratch, string name, byte[] data)
    {
        string path = Path.Combine(scratch, name);
        File.WriteAllBytes(path, data);
        return path;
    }
}
