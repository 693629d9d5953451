using System.CommandLine;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain show-batch</c>: writes a training batch as a PNG grid (augmented with --augment).</summary>
internal static class ShowBatchCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = DataSource.Description };
        var augment = new Option<bool>("--augment") { Description = "apply the training augmentations" };
        var output = new Option<string>("--out") { Description = "the PNG to write", Required = true };
        var count = new Option<int>("--count") { Description = "images in the grid", DefaultValueFactory = _ => 16 };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1 };
        var command = new Command("show-batch", "Render a batch of training images as a PNG grid.") { data, augment, output, count, seed };
        command.SetAction(p => CliSupport.Run(p, _ =>
        {
            if (p.GetValue(count) < 1) throw new ArgumentException("--count must be positive.");
            var (train, _, _) = DataSource.Load(p.GetValue(data));
            var loader = new DataLoader(train, p.GetValue(count), shuffle: true, seed: p.GetValue(seed));
            if (p.GetValue(augment)) loader.BatchTransform = Augmentations.BySize();
            var labels = BatchGrid.Save(loader, p.GetValue(output)!, p.GetValue(count));
            Console.WriteLine($"wrote {p.GetValue(output)}; labels row by row: {string.Join(", ", labels)}");
            return CliSupport.Success;
        }));
        return command;
    }
}
