// The AFL++ harness of one parser: `dotnet MLNet.FastTrain.Fuzz.dll TARGET` under afl-fuzz (scripts/fuzz.sh), or
// `dotnet MLNet.FastTrain.Fuzz.dll TARGET FILE...` to replay inputs (a crash found by a campaign) outside it.
using MLNet.FastTrain.Fuzzing;
using SharpFuzz;

if (args.Length == 0 || !FuzzTargets.Names.Contains(args[0]) && args[0] != "--seeds")
{
    Console.Error.WriteLine($"usage: MLNet.FastTrain.Fuzz TARGET [FILE...]; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}
if (args is ["--seeds", var seedDir]) return Seeds.Write(seedDir);
string target = args[0];
string scratch = Directory.CreateTempSubdirectory("fuzz-" + target + "-").FullName;
try
{
    if (args.Length > 1)
    {
        int failed = 0;
        foreach (var file in args[1..])
        {
            try
            {
                FuzzTargets.Run(target, File.ReadAllBytes(file), scratch);
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"{file}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        Console.WriteLine($"{args.Length - 1 - failed} of {args.Length - 1} inputs read or refused with the parser's own error");
        return failed == 0 ? 0 : 1;
    }
    Fuzzer.OutOfProcess.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        FuzzTargets.Run(target, buffer.ToArray(), scratch);
    });
    return 0;
}
finally
{
    Directory.Delete(scratch, recursive: true);
}

/// <summary>Seed inputs for the targets whose files our own writers make (model files, checkpoints, ONNX, IDX, CSV).</summary>
internal static class Seeds
{
    public static int Write(string root)
    {
        string Dir(string target) => Directory.CreateDirectory(Path.Combine(root, target)).FullName;
        var classes = new[] { "a", "b" };
        // A ResNet-9 of width 1 on 8×8 grey images: the smallest real network, so that AFL's inputs stay small.
        var net = MLNet.FastTrain.Vision.Models.ModelZoo.ResNet9(1, 2, new MLNet.FastTrain.Engine.Generator(1), width: 1);
        var model = new MLNet.FastTrain.Models.TrainedModel(net, "resnet9", classes, ([0.5f], [0.25f]), (1, 8, 8));
        var small = new MLNet.FastTrain.Engine.Serialization.StateDict();
        small.Add("w", MLNet.FastTrain.Engine.Tensor.Ones(2, 3));
        MLNet.FastTrain.Engine.Serialization.ModelFile.Save(Path.Combine(Dir("ftm"), "tensors.ftm"), small, new Dictionary<string, string> { ["architecture"] = "simple", ["classes"] = "a\nb", ["input"] = "1,28,28", ["mean"] = "0", ["std"] = "1" });
        MLNet.FastTrain.Engine.Serialization.ModelFile.Save(Path.Combine(Dir("checkpoint"), "tensors.ftc"), small, new Dictionary<string, string>
        {
            ["kind"] = "checkpoint", ["random"] = "1,2,3,4", ["epochs"] = "2", ["next_epoch"] = "1", ["next_batch"] = "0", ["next_step"] = "3", ["epochs_trained"] = "1",
        });
        model.Save(Path.Combine(Dir("ftm"), "resnet9-w1.ftm"));
        MLNet.FastTrain.Onnx.OnnxExporter.Export(model, Path.Combine(Dir("onnx"), "resnet9-w1.onnx"));
        byte[] idx = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8];
        File.WriteAllBytes(Path.Combine(Dir("idx"), "images.idx"), idx);
        File.WriteAllBytes(Path.Combine(Dir("idx"), "labels.idx"), [0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2]);
        File.WriteAllText(Path.Combine(Dir("csv"), "list.csv"), "path,label\na.pgm,cat\na.pgm,dog\na.pgm,cat\n");
        Console.WriteLine($"seeds written under {root}");
        return 0;
    }
}
