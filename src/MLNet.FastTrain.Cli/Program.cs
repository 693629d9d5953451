using System.CommandLine;
using MLNet.FastTrain.Cli.Commands;

var root = new RootCommand("fasttrain: fast.ai's training techniques on the MLNet.FastTrain engine.")
{
    TrainCommand.Create(),
    LrFindCommand.Create(),
    ScheduleCommand.Create(),
    ShowBatchCommand.Create(),
    EvaluateCommand.Create(),
    ExportCommand.Create(),
    PredictCommand.Create(),
    ImageCommand.Create(),
    BenchCommand.Create(),
    CliSupport.Verbose,
};
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var e in parse.Errors) Console.Error.WriteLine("error: " + e.Message);
    return CliSupport.UsageError;
}
return parse.Invoke();
