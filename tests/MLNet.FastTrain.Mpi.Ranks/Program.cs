// What each rank does in the MPI tests (run under mpirun by MLNet.FastTrain.Mpi.Tests).
//   collectives OUT            sum-allreduce, broadcast and barrier checks; rank 0 writes "ok" to OUT
//   die                        the last rank exits with 3 before an allreduce the others wait in
//   stall SECONDS              the last rank sleeps instead of joining; the others' allreduce times out after SECONDS
//   train GLOBALBATCH STEPS OUT [THREADS] [ENGINE]  data-parallel SGD of the simple net on the bundled subset, global
//                              batch split over the ranks, for STEPS steps on ENGINE (managed, the default, or torch)
//                              with THREADS threads (default 1); rank 0 writes the weights to OUT
//   lrfind OUT                 the LR finder on a data-parallel learner of the small ResNet; each rank writes to
//                              OUT.RANK how many fits it ran, the suggestion and its curve's length
//   mlnet OUT                  the ML.NET SGDR trainer with the Distributed option (LR finder included) on pixel
//                              vectors of the bundled subset; each rank writes its learning rate, its training steps
//                              with the first and last step's rates,
//                              and the scores of the first 20 rows to OUT.RANK
//   stop WHERE OUT             the SGDR recipe (two cycles of the simple net on the bundled subset, 2 × 8 images a
//                              step) with one rank's token cancelled at WHERE: "batch", rank 1 at the end of its
//                              sixth step, once the ranks have agreed to go on; "validation", rank 1 as the first
//                              validation starts; "lrfind", rank 0 in the range test it runs alone. Each rank writes
//                              to OUT.RANK the exception it stopped with and its step; collectives time out after 30 s
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Mpi;
using MLNet.FastTrain.Vision.Datasets;

using var mpi = MpiCollective.Start();
string mode = args[0];
if (mode == "collectives")
{
    float[] values = [mpi.Rank + 1, 10 * (mpi.Rank + 1), -1];
    mpi.AllReduceSum(values);
    int n = mpi.Size;
    float[] expected = [n * (n + 1) / 2f, 10 * n * (n + 1) / 2f, -n];
    var message = new byte[4];
    if (mpi.Rank == n - 1) message = [1, 2, 3, 4];
    mpi.Broadcast(message, root: n - 1);
    mpi.Barrier();
    bool ok = values.SequenceEqual(expected) && message.SequenceEqual(new byte[] { 1, 2, 3, 4 });
    if (!ok) Console.Error.WriteLine($"rank {mpi.Rank}: sums {string.Join(",", values)}, broadcast {string.Join(",", message)}");
    if (mpi.Rank == 0 && ok) File.WriteAllText(args[1], $"ok {n}");
    return ok ? 0 : 1;
}

if (mode is "die" or "stall")
{
    if (mode == "stall") mpi.CollectiveTimeout = TimeSpan.FromSeconds(int.Parse(args[1], CultureInfo.InvariantCulture));
    if (mpi.Rank == mpi.Size - 1)
    {
        if (mode == "die") Environment.Exit(3);
        Thread.Sleep(TimeSpan.FromMinutes(5));
    }
    mpi.AllReduceSum(new float[4]);
    return 0;
}

if (mode == "lrfind")
{
    EngineSettings.Threads = 1;
    var (images, _) = IdxDataset.Load(Path.Combine(DataRoot(), "data", "fashion-mnist-mini"));
    var finderLearner = Learner.ForImageClassification(images, null, "resnet", 16, seed: 1);
    DataParallel.Attach(finderLearner, new DataParallelOptions { Collective = mpi });
    var fits = new CountFits();
    finderLearner.Add(fits);
    var before = finderLearner.Model.StateDict().Clone();
    var result = MLNet.FastTrain.Tuning.LrFinder.Run(finderLearner, new MLNet.FastTrain.Tuning.LrFinder.Options { Iterations = 30 });
    bool restored = finderLearner.Model.StateDict().All(kv => kv.Value.ToArray().SequenceEqual(before[kv.Key].ToArray()));
    File.WriteAllText($"{args[1]}.{mpi.Rank}", FormattableString.Invariant($"{fits.Count} {result.Suggested:R} {result.Points.Count} {restored}"));
    return 0;
}

if (mode == "mlnet")
{
    EngineSettings.Threads = 1;
    var (images, _) = IdxDataset.Load(Path.Combine(DataRoot(), "data", "fashion-mnist-mini"));
    var rows = Enumerable.Range(0, images.Count).Select(i => new PixelRow
    {
        Features = [.. images.Pixels(i).ToArray().Select(b => b / 255f)],
        Label = images.Classes[images.LabelOf(i)],
    }).ToList();
    var ml = new Microsoft.ML.MLContext(seed: 1);
    var data = ml.Data.LoadFromEnumerable(rows);
    var trainer = ml.MulticlassClassification.Trainers.Sgdr(new MLNet.FastTrain.MLNet.SgdrEstimator.Options
    {
        Architecture = "simple", Cycles = 1, BatchSize = 16, Augment = false,
        Distributed = new DataParallelOptions { Collective = mpi },
    });
    var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer).Fit(data);
    var scores = model.Transform(data).GetColumn<float[]>("Score").Take(20).SelectMany(v => v);
    File.WriteAllText($"{args[1]}.{mpi.Rank}", FormattableString.Invariant($"{trainer.LearningRate:R}\n{trainer.Learner!.Recorder.Batches.Count} {trainer.Learner.Recorder.Batches[0].LearningRates[0]:R} {trainer.Learner.Recorder.Batches[^1].LearningRates[0]:R}\n{string.Join(" ", scores.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}"));
    return 0;
}

if (mode == "stop")
{
    mpi.CollectiveTimeout = TimeSpan.FromSeconds(30);
    EngineSettings.Threads = 1;
    string where = args[1];
    var (images, valid) = IdxDataset.Load(Path.Combine(DataRoot(), "data", "fashion-mnist-mini"));
    var stopLearner = Learner.ForImageClassification(images, valid, "simple", 8, seed: 1);
    DataParallel.Attach(stopLearner, new DataParallelOptions { Collective = mpi });
    using var stop = new CancellationTokenSource();
    stopLearner.Add(new CancelAt(where, mpi.Rank, stop));
    string ended;
    try
    {
        Recipes.Run(stopLearner, new RecipeOptions { Recipe = RecipeKind.Sgdr, Cycles = 2, LearningRate = where == "lrfind" ? null : 0.01 }, stop.Token);
        ended = "finished";
    }
    catch (OperationCanceledException e)
    {
        ended = e.GetType().Name;
    }
    File.WriteAllText($"{args[2]}.{mpi.Rank}", FormattableString.Invariant($"{ended} {stopLearner.Step}"));
    return 0;
}

int globalBatch = int.Parse(args[1], CultureInfo.InvariantCulture), steps = int.Parse(args[2], CultureInfo.InvariantCulture);
EngineSettings.Threads = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
var (train, _) = IdxDataset.Load(Path.Combine(DataRoot(), "data", "fashion-mnist-mini"));
var net = MLNet.FastTrain.Models.TrainedModel.CreateNetwork("simple", 1, 10, new Generator(1));
var loader = new DataLoader(train, globalBatch / mpi.Size, shuffle: true, seed: 3, dropLast: true);
var learner = new Learner(net, loader, null, new Sgd(net.Parameters(), 0.05, momentum: 0.9));
if (args.Length > 5 && args[5] == "torch") learner.UseEngine((m, o) => new MLNet.FastTrain.TorchSharp.TorchEngine(m, o, "cpu", EngineSettings.Threads));
DataParallel.Attach(learner, new DataParallelOptions { Collective = mpi, ScaleLearningRate = false });
learner.Add(new StopAfter(steps));
learner.Fit(1000);
if (mpi.Rank == 0) MLNet.FastTrain.Engine.Serialization.ModelFile.Save(args[3], learner.Model.StateDict(), new Dictionary<string, string> { ["ranks"] = mpi.Size.ToString(CultureInfo.InvariantCulture) });
return 0;

static string DataRoot()
{
    string root = AppContext.BaseDirectory;
    while (!Directory.Exists(Path.Combine(root, "data", "fashion-mnist-mini"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("data/fashion-mnist-mini");
    return root;
}

sealed class PixelRow
{
    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];

    public string Label { get; set; } = "";
}

sealed class CountFits : Callback
{
    public int Count { get; private set; }

    public override void BeforeFit(Learner learner) => Count++;
}

sealed class StopAfter(int steps) : Callback
{
    public override void AfterBatch(Learner learner)
    {
        if (learner.Step + 1 >= steps) throw new CancelFitException($"stopped after {steps} steps");
    }
}

// Cancels one rank's token at one point of the run (the stop mode).
sealed class CancelAt(string where, int rank, CancellationTokenSource stop) : Callback
{
    public override int Order => 70; // after CancelOnRequest (60): the ranks have just agreed to go on

    public override void AfterBatch(Learner learner)
    {
        if (where == "batch" && rank == 1 && learner.Collective.Size > 1 && learner.Step == 5) stop.Cancel();
        // The range test runs on rank 0 without the data-parallel callback: a collective of one.
        if (where == "lrfind" && rank == 0 && learner.Collective.Size == 1) stop.Cancel();
    }

    public override void BeforeValidate(Learner learner)
    {
        if (where == "validation" && rank == 1) stop.Cancel();
    }
}
