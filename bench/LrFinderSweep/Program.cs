// Checks the LR finder against a grid sweep. For a zoo net on Fashion-MNIST (a seeded subset or all of it), with the
// recipes' optimizer (AdamW, as Learner.ForImageClassification builds it): runs the range test once, then one epoch
// of one-cycle and one SGDR cycle of one epoch at each of 9 log-spaced rates (1e-4 to 1e-1, ×2.37 apart), and one of
// each at the default rule's suggestion. A cell passes when the suggestion is within 3× of the grid's best rate (by
// validation accuracy) or trains to within 0.5 accuracy points of it.
//
//   dotnet run -c Release --project bench/LrFinderSweep -- [simple|resnet|resnet9|resnet-wide|resnet18-imagenet] [train-items|all] [data-dir] [rule] [suggestion-only|one-cycle|sgdr] [--journal FILE] [--from-top]
//
// Defaults: resnet, 5000 items (validation: 2000 items; all 10,000 with "all"), /usr/share/datasets/fashion-mnist
// (Debian's dataset-fashion-mnist), the default rule, Auto (or any LrSuggestion, e.g. ranked: its short runs are scored on
// the first 1,000 validation images). Prints one markdown table row per recipe. A fifth argument, "suggestion-only",
// skips the grid and prints the suggestion and the accuracy it trains to (to set against a grid measured before);
// "one-cycle" or "sgdr" there sweeps that recipe alone (and runs the range test for it alone).
//
// resnet18-imagenet is ML.NET's ImageNet ResNet-18 (package Microsoft.ML.DnnImageFeaturizer.ResNet18) with a new head,
// fine-tuned unfrozen at 64 px (the images upsampled in the loader) with the fine-tuning recipe's group ratios (each
// earlier group 3× lower): the rate of a row is the head's, and the range test ramps every group at those ratios, as
// the recipe's step after unfreezing does.
using System.Globalization;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engines;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;

var inv = CultureInfo.InvariantCulture;
// --journal FILE (anywhere): every finished training run's accuracy is appended to FILE, and a rerun with the same net,
// images and data takes what FILE already holds instead of training it again, so a sweep of hours can stop and go on
// (the range tests, a few minutes, run again: they are seeded and give the same rates).
string? journalPath = null;
int at = Array.IndexOf(args, "--journal");
if (at >= 0)
{
    if (at + 1 >= args.Length) { Console.Error.WriteLine("--journal needs a file"); return 2; }
    journalPath = args[at + 1];
    args = [.. args[..at], .. args[(at + 2)..]];
}
// --from-top: the grid from its highest rate down. The journal is read again before every run, so two sweeps of one
// cell sharing a journal, one from each end (each on a core of its own), split the grid between them.
bool fromTop = args.Contains("--from-top");
args = [.. args.Where(a => a != "--from-top")];
string arch = args.Length > 0 ? args[0] : "resnet";
bool all = args.Length > 1 && args[1] == "all";
int items = all ? int.MaxValue : args.Length > 1 ? int.Parse(args[1], inv) : 5000;
string dir = args.Length > 2 ? args[2] : "/usr/share/datasets/fashion-mnist";
var rule = args.Length > 3 ? Enum.Parse<LrSuggestion>(args[3], ignoreCase: true) : LrSuggestion.Auto;
string mode = args.Length > 4 ? args[4] : "";
if (mode is not ("" or "suggestion-only" or "one-cycle" or "sgdr"))
{
    Console.Error.WriteLine($"fifth argument '{mode}': expected suggestion-only, one-cycle or sgdr");
    return 2;
}
const int Batch = 64;

var (full, fullValid) = IdxDataset.Load(dir);
var order = Enumerable.Range(0, full.Count).ToArray();
new Generator(11).Shuffle<int>(order);
var train = all ? full : full.Subset(order[..Math.Min(items, full.Count)]);
var valid = all ? fullValid : fullValid.Subset(Enumerable.Range(0, Math.Min(2000, fullValid.Count)).ToArray());

// The engine the CLI's --backend auto takes for the net on this machine (the torch engine for the ImageNet ResNet-18 on
// the CPU, the managed one for the small nets: docs/performance.md, "Two engines").
var engine = new EngineChoice();
string engineName = engine.Resolve(out _, arch) is null ? "managed" : "torch";

// The journal's lines: net, engine, images, data directory, recipe, rate, accuracy (tab-separated).
string JournalKey(string what, double lr) => string.Create(inv, $"{arch}\t{engineName}\t{train.Count}\t{Path.GetFullPath(dir)}\t{what}\t{lr:R}");
var journal = new Dictionary<string, double>();
void ReadJournal()
{
    if (journalPath is null || !File.Exists(journalPath)) return;
    foreach (string line in File.ReadLines(journalPath))
    {
        int last = line.LastIndexOf('\t');
        if (last > 0 && double.TryParse(line[(last + 1)..], NumberStyles.Float, inv, out double value)) journal[line[..last]] = value;
    }
}
double Journaled(string what, double lr, Func<double> run)
{
    string key = JournalKey(what, lr);
    ReadJournal();
    if (journal.TryGetValue(key, out double known))
    {
        Console.Error.WriteLine(string.Create(inv, $"  {what} lr {lr:G3}: {known:G6} (from {journalPath})"));
        return known;
    }
    double value = run();
    journal[key] = value;
    if (journalPath is not null) File.AppendAllText(journalPath, string.Create(inv, $"{key}\t{value:R}\n"));
    return value;
}

bool pretrained = PretrainedModels.IsName(arch);
const int PretrainedSize = 64;
double[] groupRatios = [1.0];   // per layer group, relative to the head's rate
DifferentialFineTune? fineTune = null;

Learner NewLearner()
{
    Generator.Default.ManualSeed(1);
    if (pretrained)
    {
        var loaded = PretrainedModels.LoadForFineTuning(arch, train.Channels, train.Classes, 1, (PretrainedSize, PretrainedSize));
        fineTune = new DifferentialFineTune(loaded.Network);
        int groups = fineTune.Groups.Count;
        groupRatios = Enumerable.Range(0, groups).Select(g => Math.Pow(3, g - (groups - 1))).ToArray();
        var learner = Learner.ForImageClassification(train, valid, loaded.Network, fineTune.CreateParamGroups(), Batch, 1, loaded.Normalization);
        ((DataLoader)learner.TrainData).ImageSize = (PretrainedSize, PretrainedSize);
        ((DataLoader)learner.ValidData!).ImageSize = (PretrainedSize, PretrainedSize);
        Console.Error.WriteLine("  " + engine.ApplyTo(learner, arch));
        return learner;
    }
    var trainLoader = new DataLoader(train, Batch, shuffle: true, seed: 1, dropLast: true);
    var validLoader = new DataLoader(valid, 500, shuffle: false, normalization: trainLoader.Normalization);
    var net = TrainedModel.CreateNetwork(arch, 1, 10, new Generator(1));
    var small = new Learner(net, trainLoader, validLoader);   // AdamW, β 0.9/0.999, weight decay 0.01: the recipes' optimizer
    engine.ApplyTo(small, arch);
    return small;
}

// The rates of every optimizer group for a head rate (two optimizer groups per layer group).
double[] Rates(double lr) => fineTune is null ? [lr] : fineTune.PerParamGroup(groupRatios.Select(r => r * lr).ToArray());

double Train(string recipe, double lr) => Journaled(recipe, lr, () => TrainNow(recipe, lr));

double TrainNow(string recipe, double lr)
{
    var learner = NewLearner();
    if (recipe == "one-cycle") learner.FitOneCycle(1, Rates(lr));
    else learner.FitSgdr(1, Rates(lr), cycleLength: 1);
    double accuracy = learner.LastValidation!.Metrics["accuracy"];
    Console.Error.WriteLine(string.Create(inv, $"  {recipe} lr {lr:G3}: accuracy {accuracy:F4}"));
    return accuracy;
}

// The rule's suggestion for each recipe: SGDR starts every cycle at its peak, which the default rule takes into account.
var finderLearner = NewLearner();
finderLearner.Log += (_, m) => Console.Error.WriteLine("  " + m);
// A recipe named as the fifth argument needs its own suggestion only (each range test of a full-set ResNet-18 takes minutes).
string[] recipes = mode is "one-cycle" or "sgdr" ? [mode] : ["one-cycle", "sgdr"];
var suggestions = recipes.ToDictionary(recipe => recipe,
    recipe => SuggestFor(recipe));
(double LearningRate, LrFinderResult Result) SuggestFor(string recipe)
{
    var options = new LrFinder.Options { Suggestion = rule, RestartsAtPeak = recipe == "sgdr" };
    if (fineTune is null) return LrFinder.Suggest(finderLearner, options);
    // Every group ramps at its ratio; the finder reports the first group's rate, the head's is that over its ratio.
    options.PerGroup = Rates(1).Select(r => (options.StartLr * r, options.EndLr * r)).ToArray();
    var (first, result) = LrFinder.Suggest(finderLearner, options);
    return (first / groupRatios[0], result);
}
var finder = suggestions[recipes[0]].Result;
if (mode == "suggestion-only")
{
    Console.WriteLine($"| net | images | recipe | suggestion ({rule.ToString().ToLowerInvariant()}) | accuracy at it |");
    foreach (string recipe in recipes)
        Console.WriteLine(string.Create(inv, $"| {arch} | {train.Count} | {recipe} | {suggestions[recipe].LearningRate:G3} | {100 * Train(recipe, suggestions[recipe].LearningRate):F2} % |"));
    return 0;
}

double[] grid = Enumerable.Range(0, 9).Select(i => Math.Pow(10, -4 + 3.0 * i / 8)).ToArray();
Console.WriteLine($"| net | images | recipe | best grid rate | its accuracy | suggestion ({rule.ToString().ToLowerInvariant()}) | factor | accuracy at it | verdict | valley, steep, minimum, slide (factor from best) |");
foreach (string recipe in recipes)
{
    var results = (fromTop ? Enumerable.Reverse(grid) : grid).Select(lr => (Lr: lr, Accuracy: Train(recipe, lr))).OrderBy(r => r.Lr).ToList();
    var best = results.MaxBy(r => r.Accuracy);
    double suggested = suggestions[recipe].LearningRate;
    double atSuggestion = Train(recipe, suggested);
    double factor = Math.Max(suggested / best.Lr, best.Lr / suggested);
    bool passes = factor <= 3 || atSuggestion >= best.Accuracy - 0.005;
    string others = string.Join(", ", new[] { LrSuggestion.Valley, LrSuggestion.Steep, LrSuggestion.Minimum, LrSuggestion.Slide }.Select(rule =>
        finder.Suggestions.TryGetValue(rule, out double first) && double.IsFinite(first) && first / groupRatios[0] is var lr
            ? string.Create(inv, $"{lr:G2} (×{Math.Max(lr / best.Lr, best.Lr / lr):F1})") : "none"));
    Console.WriteLine(string.Create(inv,
        $"| {arch} | {train.Count} | {recipe} | {best.Lr:G3} | {100 * best.Accuracy:F2} % | {suggested:G3} | ×{factor:F1} | {100 * atSuggestion:F2} % | {(passes ? "pass" : "**fail**")} | {others} |"));
}
return 0;
