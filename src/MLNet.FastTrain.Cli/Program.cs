using System.CommandLine;
using MLNet.FastTrain.Cli.Commands;

var root = new RootCommand("fasttrain: fast.ai's training techniques on the MLNet.FastTrain engine.")
{
    BenchCommand.Create(),
};
return root.Parse(args).Invoke();
