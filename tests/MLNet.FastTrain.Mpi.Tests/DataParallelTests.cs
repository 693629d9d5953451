using System.Diagnostics;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.TestUtilities;
using MLNet.FastTrain.Vision.Datasets;
using Xunit;

namespace MLNet.FastTrain.Mpi.Tests;

/// <summary>
/// Data-parallel training on Open MPI (docs/design.md §11), with real ranks: each test starts the rank program
/// (MLNet.FastTrain.Mpi.Ranks) under <c>mpirun --oversubscribe</c> on this machine.
/// </summary>
public sealed class DataParallelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mpi-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static string RankProgram() => Built("tests", "MLNet.FastTrain.Mpi.Ranks", "MLNet.FastTrain.Mpi.Ranks.dll");

    /// <summary>A program the build put beside this project (a project reference), in the same configuration.</summary>
    internal static string Built(string folder, string project, string assembly)
    {
        string configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        string path = RepoPaths.Get(folder, project, "bin", configuration, "net10.0", assembly);
        Assert.True(File.Exists(path), $"{assembly} is not built: {path}");
        return path;
    }

    internal static void MpiRun(int ranks, params string[] arguments)
    {
        var (code, output) = MpiRunExit(ranks, TimeSpan.FromMinutes(3), arguments);
        Assert.True(code == 0, $"mpirun -np {ranks} exited with {code}: {output}");
    }

    private static (int ExitCode, string Output) MpiRunExit(int ranks, TimeSpan limit, params string[] arguments) =>
        MpiRunProgram(ranks, limit, RankProgram(), arguments);

    /// <summary>Runs a .NET program under mpirun on this machine and returns its exit code and output.</summary>
    internal static (int ExitCode, string Output) MpiRunProgram(int ranks, TimeSpan limit, string program, IEnumerable<string> arguments, Action<Process>? whileRunning = null)
    {
        using var process = StartMpiRun(ranks, program, arguments);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        whileRunning?.Invoke(process);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            // What the ranks printed before they hung says where (the streams end once the processes are gone).
            string printed = Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(10)) ? stdout.Result + stderr.Result : "(their output did not end)";
            Assert.Fail($"mpirun did not finish in {limit.TotalSeconds:F0} s; the ranks printed:\n{printed}");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static Process StartMpiRun(int ranks, string program, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--oversubscribe", "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "dotnet", program }.Concat(arguments))
            start.ArgumentList.Add(a);
        // CI runs as root; Open MPI refuses root unless told twice.
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        return Process.Start(start)!;
    }

    [Fact]
    public void A_rank_that_dies_ends_the_job_instead_of_leaving_the_others_waiting()
    {
        var clock = Stopwatch.StartNew();
        var (code, output) = MpiRunExit(2, TimeSpan.FromSeconds(60), "die");
        Assert.NotEqual(0, code);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), output);
    }

    [Fact]
    public void A_rank_that_hangs_ends_the_job_at_the_collective_timeout_with_a_message()
    {
        var clock = Stopwatch.StartNew();
        var (code, output) = MpiRunExit(2, TimeSpan.FromSeconds(90), "stall", "3");
        Assert.NotEqual(0, code);
        Assert.Contains("waited 3 s in an allreduce for the other ranks", output, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"{clock.Elapsed}: {output}");
    }

    // A stop one rank's token asks for, at a point where the old code let that rank leave alone and the other wait in
    // its next collective (the job then ended only at the 30 s collective timeout): every rank stops, at the same step.
    [Theory]
    [InlineData("batch", "StopRequestedException 6", "StopRequestedException 6")]
    [InlineData("validation", "StopRequestedException 37", "StopRequestedException 37")] // 600 images / 16 a step
    [InlineData("lrfind", "OperationCanceledException 1", "StopRequestedException 0")] // rank 0 alone runs the range test
    public void A_stop_one_rank_is_asked_for_stops_every_rank_at_the_same_point(string where, string rank0, string rank1)
    {
        string output = Path.Combine(_dir, "stop");
        var clock = Stopwatch.StartNew();
        var (code, printed) = MpiRunExit(2, TimeSpan.FromSeconds(90), "stop", where, output);
        Assert.True(code == 0, $"mpirun exited with {code} after {clock.Elapsed}: {printed}");
        Assert.Equal(rank0, File.ReadAllText(output + ".0"));
        Assert.Equal(rank1, File.ReadAllText(output + ".1"));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Allreduce_broadcast_and_barrier_agree_on_every_rank(int ranks)
    {
        string result = Path.Combine(_dir, "collectives.txt");
        MpiRun(ranks, "collectives", result);
        Assert.Equal($"ok {ranks}", File.ReadAllText(result));
    }

    [Theory]
    [InlineData("managed", 1, 1e-6)]
    [InlineData("managed", 20, 1e-3)]
    [InlineData("torch", 1, 1e-6)]
    [InlineData("torch", 20, 1e-3)]
    public void Two_ranks_of_batch_64_take_the_steps_of_one_rank_of_batch_128(string engine, int steps, double tolerance)
    {
        // After one step the two differ by float rounding alone (measured 9e-8 of the largest weight). Over 20 steps of
        // SGD with momentum the rounding grows as it does between any two summation orders: one process with 1 and with
        // 2 threads ends 3.1e-4 apart, and 2 ranks against 1 rank 2.8e-4 (the rank program's "train ... 2" runs both).
        string one = Path.Combine(_dir, "one.ftm"), two = Path.Combine(_dir, "two.ftm");
        string count = steps.ToString(System.Globalization.CultureInfo.InvariantCulture);
        MpiRun(1, "train", "128", count, one, "1", engine);
        MpiRun(2, "train", "128", count, two, "1", engine);
        var (a, _) = ModelFile.Load(one);
        var (b, _) = ModelFile.Load(two);
        var initial = MLNet.FastTrain.Models.TrainedModel.CreateNetwork("simple", 1, 10, new Engine.Generator(1)).StateDict();
        Assert.Equal(a.Keys, b.Keys);
        foreach (var (name, tensor) in a)
        {
            var x = tensor.ToArray();
            var y = b[name].ToArray();
            double scale = x.Max(v => Math.Abs(v)), worst = x.Zip(y, (p, q) => Math.Abs(p - q)).Max();
            Assert.True(worst <= tolerance * scale, $"{name}: {worst:g3} apart (largest value {scale:g3})");
            if (!name.EndsWith("bias", StringComparison.Ordinal)) Assert.NotEqual(initial[name].ToArray(), x);      // the weights did train
        }
    }

    [Fact]
    public void The_LR_finder_runs_once_on_rank_0_and_every_rank_gets_its_answer()
    {
        string result = Path.Combine(_dir, "lrfind");
        MpiRun(2, "lrfind", result);
        var ranks = Enumerable.Range(0, 2).Select(r => File.ReadAllText($"{result}.{r}").Split(' ')).ToArray();
        Assert.Equal("1", ranks[0][0]);                  // rank 0 ran the range test's fit
        Assert.Equal("0", ranks[1][0]);                  // rank 1 did not train at all
        Assert.Equal(ranks[0][1], ranks[1][1]);          // the same suggestion, to the last bit
        Assert.Equal("30", ranks[1][2]);                 // and the whole curve
        Assert.True(double.Parse(ranks[1][1], System.Globalization.CultureInfo.InvariantCulture) > 0);
        Assert.All(ranks, r => Assert.Equal("True", r[3])); // the weights put back on both
    }

    [Fact]
    public void The_MLNet_trainer_with_the_Distributed_option_gives_every_rank_the_same_model()
    {
        string result = Path.Combine(_dir, "mlnet");
        MpiRun(2, "mlnet", result);
        var ranks = Enumerable.Range(0, 2).Select(r => File.ReadAllLines($"{result}.{r}")).ToArray();
        Assert.Equal(ranks[0][0], ranks[1][0]);                 // one LR finder's answer
        // Each rank took its half of the epoch: 540 training rows (a tenth held out) over 2 ranks × 16 a batch.
        // and its schedule covered those 16 steps: the cycle starts at twice the found rate (linear scaling for 2 ranks) and anneals to about 0.
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        foreach (var steps in ranks.Select(r => r[1].Split(' ')))
        {
            Assert.Equal("16", steps[0]);
            Assert.Equal(2 * double.Parse(ranks[0][0], inv), double.Parse(steps[1], inv), 6);
            Assert.True(double.Parse(steps[2], inv) < 0.02 * double.Parse(steps[1], inv), $"the last step trained at {steps[2]}, the first at {steps[1]}");
        }
        Assert.Equal(ranks[0][2], ranks[1][2]);                 // the same scores, to the last bit
        Assert.Equal(200, ranks[0][2].Split(' ').Length);       // 20 rows × 10 classes
        Assert.NotEqual(1, ranks[0][2].Split(' ').Distinct().Count());
    }

    [Fact]
    public void A_shard_outside_the_ranks_or_larger_than_the_data_is_refused()
    {
        var (train, _) = IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini"));
        var loader = new DataLoader(train, 16, shuffle: true, seed: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Shard = (2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Shard = (0, 0));
        Assert.Throws<ArgumentException>(() => loader.Shard = (0, train.Count + 1));
        loader.Shard = (1, 3);
        var all = new DataLoader(train, 16, shuffle: true, seed: 1).Order(4);
        Assert.Equal(all.Where((_, i) => i % 3 == 1).Take(train.Count / 3), loader.Order(4));
    }
}
