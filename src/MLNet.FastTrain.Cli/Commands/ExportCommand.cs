using System.CommandLine;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain export</c>: writes a trained model as ONNX for ML.NET's ApplyOnnxModel and ONNX Runtime.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "the trained model (.ftm)", Required = true };
        var onnx = new Option<string>("--onnx") { Description = "the ONNX file to write", Required = true };
        var json = new Option<bool>("--json") { Description = "print one JSON object describing the export" };
        var command = new Command("export", "Export a trained model to ONNX (input 'image': float32 NCHW pixels in [0, 1]; output 'probabilities').")
        {
            model, onnx, json,
        };
        command.SetAction(parse => CliSupport.Run(parse, _ =>
        {
            var trained = TrainedModel.Load(parse.GetValue(model)!);
            var path = parse.GetValue(onnx)!;
            OnnxExporter.Export(trained, path);
            var (c, h, w) = trained.InputSize;
            if (parse.GetValue(json))
            {
                CliSupport.WriteJson(new Dictionary<string, object?>
                {
                    ["onnx"] = Path.GetFullPath(path),
                    ["input"] = OnnxExporter.InputName,
                    ["output"] = OnnxExporter.OutputName,
                    ["opset"] = OnnxExporter.Opset,
                    ["labels"] = trained.Classes,
                    ["bytes"] = new FileInfo(path).Length,
                });
            }
            else
            {
                Console.WriteLine($"wrote {path}: input '{OnnxExporter.InputName}' [batch, {c}, {h}, {w}] pixels in [0, 1], output '{OnnxExporter.OutputName}' [batch, {trained.Classes.Count}] (opset {OnnxExporter.Opset})");
            }
            return CliSupport.Success;
        }));
        return command;
    }
}
