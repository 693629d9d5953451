// What each rank does in the MPI tests (run under mpirun by MLNet.FastTrain.Mpi.Tests).
//   collectives OUT            sum-allreduce, broadcast and barrier checks; rank 0 writes "ok" to OUT
//   die                        the last rank exits with 3 before an allreduce the others wait in
//   stall SECONDS              the last rank sleeps instead of joining; the others' allreduce times out after SECONDS
//   train GLOBALBATCH STEPS OUT [THREADS] [ENGINE]  data-parallel SGD of the simple net on the bundled subset, global
//                              batch split over the ranks, for STEPS steps on ENGINE (managed, the default, or torch)
//                              with THREADS threads (default 1); rank 0 writes the weights to OUT
using System.Globalization;
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

int globalBatch = int.Parse(args[1], CultureInfo.InvariantCulture), steps = int.Parse(args[2], CultureInfo.InvariantCulture);
EngineSettings.Threads = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
string root = AppContext.BaseDirectory;
while (!Directory.Exists(Path.Combine(root, "data", "fashion-mnist-mini"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("data/fashion-mnist-mini");
var (train, _) = IdxDataset.Load(Path.Combine(root, "data", "fashion-mnist-mini"));
var net = MLNet.FastTrain.Models.TrainedModel.CreateNetwork("simple", 1, 10, new Generator(1));
var loader = new DataLoader(train, globalBatch / mpi.Size, shuffle: true, seed: 3, dropLast: true);
var learner = new Learner(net, loader, null, new Sgd(net.Parameters(), 0.05, momentum: 0.9));
if (args.Length > 5 && args[5] == "torch") learner.UseEngine((m, o) => new MLNet.FastTrain.TorchSharp.TorchEngine(m, o, "cpu", EngineSettings.Threads));
learner.Add(new DataParallel(mpi));
learner.Add(new StopAfter(steps));
learner.Fit(1000);
if (mpi.Rank == 0) MLNet.FastTrain.Engine.Serialization.ModelFile.Save(args[3], learner.Model.StateDict(), new Dictionary<string, string> { ["ranks"] = mpi.Size.ToString(CultureInfo.InvariantCulture) });
return 0;

sealed class StopAfter(int steps) : Callback
{
    public override void AfterBatch(Learner learner)
    {
        if (learner.Step + 1 >= steps) throw new CancelFitException($"stopped after {steps} steps");
    }
}
