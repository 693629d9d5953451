using System.CommandLine;
using System.Globalization;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain lr-find</c>: the learning-rate range test, with its curve, suggestions and an SVG plot.</summary>
internal static class LrFindCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = DataSource.Description };
        var model = new Option<string>("--model") { DefaultValueFactory = _ => "resnet9" };
        model.AcceptOnlyFromAmong([.. Models.TrainedModel.Architectures]);
        var batch = new Option<int?>("--batch") { Description = "default: as train" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var plot = new Option<string?>("--plot") { Description = "write the curve as SVG" };
        var json = new Option<bool>("--json");
        var (backend, device, precision) = CliSupport.EngineOptions();
        var command = new Command("lr-find", "Run the learning-rate range test.") { data, model, batch, seed, threads, plot, json, backend, device, precision };
        command.SetAction(p => CliSupport.Run(p, ct =>
        {
            if (p.GetValue(batch) is < 1 || p.GetValue(threads) < 1) throw new ArgumentException("--batch and --threads must be positive.");
            EngineSettings.Threads = p.GetValue(threads);
            ulong s = p.GetValue(seed);
            Generator.Default.ManualSeed(s);
            var (train, _, _) = DataSource.Load(p.GetValue(data), seed: s);
            var learner = Learner.ForImageClassification(train, null, p.GetValue(model)!, p.GetValue(batch), s);
            new Engines.EngineChoice(p.GetValue(backend)!, p.GetValue(device)!, p.GetValue(threads), Precision: p.GetValue(precision)!).ApplyTo(learner, p.GetValue(model));
            var result = LrFinder.Run(learner, new LrFinder.Options(), ct);
            if (p.GetValue(plot) is { } path) Engine.Serialization.AtomicFile.WriteAllText(path, result.ToSvg());
            if (p.GetValue(json))
            {
                CliSupport.WriteJson(new Dictionary<string, object?>
                {
                    ["lr"] = result.Points.Select(q => q.LearningRate).ToArray(),
                    ["loss"] = result.Points.Select(q => q.SmoothLoss).ToArray(),
                    ["suggested"] = result.Suggested,
                    ["suggestions"] = result.Suggestions.ToDictionary(kv => kv.Key.ToString().ToLowerInvariant(), kv => kv.Value),
                    ["warning"] = result.Warning,
                });
            }
            else
            {
                foreach (var (rule, lr) in result.Suggestions) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{rule,-8} {lr:G3}"));
                if (result.Warning is not null) Console.WriteLine("warning: " + result.Warning);
            }
            return CliSupport.Success;
        }));
        return command;
    }
}
