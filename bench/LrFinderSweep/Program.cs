// Checks the LR finder against a grid sweep: for a reference net on a seeded subset of Fashion-MNIST, runs the
// range test, then one epoch of one-cycle at each learning rate of a grid, and prints every suggestion's distance
// (as a factor) from the grid's best rate by validation loss.
//
//   dotnet run -c Release --project bench/LrFinderSweep -- [simple|resnet] [train-items] [sgd|adamw] [data-dir]
//
// Defaults: resnet, 5000 items, adamw, /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
using System.Globalization;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;

string arch = args.Length > 0 ? args[0] : "resnet";
int items = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5000;
bool sgd = args.Length > 2 && args[2] == "sgd";
string dir = args.Length > 3 ? args[3] : "/usr/share/datasets/fashion-mnist";
const int Batch = 64;

var (full, fullValid) = IdxDataset.Load(dir);
var order = Enumerable.Range(0, full.Count).ToArray();
new Generator(11).Shuffle<int>(order);
var train = full.Subset(order[..Math.Min(items, full.Count)]);
var valid = fullValid.Subset(Enumerable.Range(0, Math.Min(2000, fullValid.Count)).ToArray());

Learner NewLearner()
{
    var trainLoader = new DataLoader(train, Batch, shuffle: true, seed: 1, dropLast: true);
    var validLoader = new DataLoader(valid, 500, shuffle: false, normalization: trainLoader.Normalization);
    var net = TrainedModel.CreateNetwork(arch, 1, 10, new Generator(1));
    Optimizer opt = sgd ? new Sgd(net.Parameters(), 1e-3, momentum: 0.9, weightDecay: 5e-4) : new AdamW(net.Parameters());
    return new Learner(net, trainLoader, validLoader, opt);
}

var finder = LrFinder.Run(NewLearner());
double[] grid = sgd ? [0.003, 0.01, 0.03, 0.1, 0.3, 1.0] : [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1];
var results = new List<(double Lr, double Loss, double Accuracy)>();
foreach (double lr in grid)
{
    var learner = NewLearner();
    learner.FitOneCycle(1, [lr]);
    var v = learner.LastValidation!;
    results.Add((lr, v.Loss, v.Metrics["accuracy"]));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lr {lr,-7:G3} valid_loss {v.Loss:F4} accuracy {v.Metrics["accuracy"]:F4}"));
}
double best = results.Where(r => double.IsFinite(r.Loss)).MinBy(r => r.Loss).Lr;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{arch}, {(sgd ? "SGD momentum 0.9" : "AdamW")}, {train.Count} items: best grid rate {best:G3}"));
foreach (var (rule, lr) in finder.Suggestions)
{
    double factor = Math.Max(lr / best, best / lr);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {rule,-8} {lr,-10:G3} ×{factor:F1} from best {(factor <= 3 ? "(within 3×)" : "")}"));
}
