using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.TestUtilities;
using Xunit;

namespace MLNet.FastTrain.Mpi.Tests;

/// <summary><c>mpirun -np N fasttrain train --distributed</c>: what rank 0 alone writes and prints, a rank killed or signalled mid-epoch, and resume.</summary>
public sealed class DistributedCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mpi-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Tool() => DataParallelTests.Built("src", "MLNet.FastTrain.Cli", "fasttrain.dll");

    // SGDR of two cycles (3 epochs) of the simple net on the bundled subset, 2 × 8 images a step: 37 steps an epoch.
    private string[] Train(string checkpoints, string model, params string[] more) =>
    [
        "train", "--distributed", "--data", RepoPaths.Get("data", "fashion-mnist-mini"), "--model", "simple", "--recipe", "sgdr", "--cycles", "2",
        "--lr", "0.01", "--batch", "8", "--tta", "false", "--threads", "1", "--checkpoint-dir", Path.Combine(_dir, checkpoints), "--out", Path.Combine(_dir, model), .. more,
    ];

    [Fact]
    public void Rank_0_alone_prints_and_writes_the_model_the_report_and_the_checkpoints()
    {
        var (code, output) = DataParallelTests.MpiRunProgram(2, TimeSpan.FromMinutes(3), Tool(), Train("ck", "model.ftm", "--report", Path.Combine(_dir, "report.html")));
        Assert.True(code == 0, output);
        Assert.Equal(1, Count(output, "data-parallel: 2 ranks × batch 8 = 16 a step; learning rates × 2"));
        Assert.Equal(1, Count(output, "validation accuracy"));
        Assert.Equal(1, Count(output, "epoch 3/3"));
        Assert.True(File.Exists(Path.Combine(_dir, "model.ftm")) && File.Exists(Path.Combine(_dir, "report.html")), output);
        var checkpoints = Directory.GetFiles(Path.Combine(_dir, "ck")).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["checkpoint-000000037.ftc", "checkpoint-000000074.ftc", "checkpoint-000000111.ftc"], checkpoints); // 600 images / 16 a step
        Assert.Equal("2", ModelFile.Load(Path.Combine(_dir, "ck", checkpoints[^1])).Metadata["ranks"]);
    }

    [Fact]
    public void A_rank_killed_or_stopped_by_a_signal_mid_epoch_ends_every_rank_and_the_job_resumes_from_the_last_checkpoint_exactly()
    {
        var (code, output) = DataParallelTests.MpiRunProgram(2, TimeSpan.FromMinutes(3), Tool(), Train("whole", "whole.ftm"));
        Assert.True(code == 0, output);

        // The same job, rank 1 killed (SIGKILL: no chance to say goodbye) once the first epoch's checkpoint is written.
        var killed = Stopwatch.StartNew();
        (code, output) = DataParallelTests.MpiRunProgram(2, TimeSpan.FromMinutes(3), Tool(), Train("cut", "cut.ftm"), mpirun =>
        {
            string folder = Path.Combine(_dir, "cut");
            var wait = Stopwatch.StartNew();
            while (!(Directory.Exists(folder) && Directory.GetFiles(folder, "checkpoint-*.ftc").Length > 0))
            {
                Assert.True(wait.Elapsed < TimeSpan.FromMinutes(2) && !mpirun.HasExited, "no checkpoint was written");
                Thread.Sleep(20);
            }
            Process.GetProcessById(RankPid(mpirun.Id, 1)).Kill();
            killed.Restart();
        });
        Assert.NotEqual(0, code);
        Assert.True(killed.Elapsed < TimeSpan.FromSeconds(30), $"the other rank took {killed.Elapsed} to end: {output}");
        Assert.False(File.Exists(Path.Combine(_dir, "cut.ftm")));

        // Another count of ranks is refused with the count to use; the same count continues where the checkpoint left off.
        (code, output) = DataParallelTests.MpiRunProgram(1, TimeSpan.FromMinutes(3), Tool(), Train("cut", "cut.ftm", "--resume"));
        Assert.Equal(2, code);
        Assert.Contains("written by a run of 2 process(es); resume it with as many (mpirun -np 2), not 1", output, StringComparison.Ordinal);
        (code, output) = DataParallelTests.MpiRunProgram(2, TimeSpan.FromMinutes(3), Tool(), Train("cut", "cut.ftm", "--resume"));
        Assert.True(code == 0, output);
        Assert.Contains("resuming from", output, StringComparison.Ordinal);
        AssertSameWeights("whole.ftm", "cut.ftm");

        // SIGTERM to rank 1 alone: both ranks stop after the same step, rank 0 writes that step's checkpoint, both
        // leave with 143, and the job resumes from it to the same weights.
        (code, output) = DataParallelTests.MpiRunProgram(2, TimeSpan.FromMinutes(3), Tool(), Train("term", "term.ftm"), mpirun =>
        {
            string first = Path.Combine(_dir, "term", "checkpoint-000000037.ftc");
            var wait = Stopwatch.StartNew();
            while (!File.Exists(first))
            {
                Assert.True(wait.Elapsed < TimeSpan.FromMinutes(2) && !mpirun.HasExited, "no checkpoint was written");
                Thread.Sleep(20);
            }
            Thread.Sleep(200); // into the second epoch
            Assert.Equal(0, Kill(RankPid(mpirun.Id, 1), 15));
        });
        Assert.True(code == 143, output);
        // Rank 0 got no signal: it stops with rank 1, says why, and writes no model of the unfinished run.
        Assert.Contains("cancelled on another rank", output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "term.ftm")), output);
        var written = Directory.GetFiles(Path.Combine(_dir, "term"), "checkpoint-*.ftc").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();
        Assert.True(written.Length == 2 && written[1] != "checkpoint-000000074.ftc", $"expected a checkpoint inside the second epoch: {string.Join(", ", written)}; {output}");
        (code, output) = DataParallelTests.MpiRunProgram(2, TimeSpan.FromMinutes(3), Tool(), Train("term", "term.ftm", "--resume"));
        Assert.True(code == 0, output);
        AssertSameWeights("whole.ftm", "term.ftm");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private void AssertSameWeights(string expected, string actual)
    {
        var (a, _) = ModelFile.Load(Path.Combine(_dir, expected));
        var (b, _) = ModelFile.Load(Path.Combine(_dir, actual));
        foreach (var (name, tensor) in a)
            Assert.True(tensor.ToArray().SequenceEqual(b[name].ToArray()), $"{name} differs after the resume");
    }

    [Fact]
    public void The_batch_size_finder_runs_on_rank_0_and_every_rank_trains_with_its_answer()
    {
        var (code, output) = DataParallelTests.MpiRunProgram(2, TimeSpan.FromMinutes(3), Tool(),
            ["train", "--distributed", "--data", RepoPaths.Get("data", "fashion-mnist-mini"), "--model", "simple", "--recipe", "one-cycle", "--epochs", "1",
             "--lr", "0.01", "--memory-budget", "2GB", "--tta", "false", "--threads", "1", "--json"]);
        Assert.True(code == 0, output);
        int json = output.IndexOf('{', StringComparison.Ordinal);
        using var document = System.Text.Json.JsonDocument.Parse(output[json..(output.LastIndexOf('}') + 1)]);
        Assert.Equal(2, document.RootElement.GetProperty("ranks").GetInt32());
        Assert.Equal(150, document.RootElement.GetProperty("batch_size").GetInt32()); // a quarter of the 600 images, the finder's cap, fits in 2 GB
        Assert.Equal(1, Count(output, "\"ranks\""));
    }

    [Fact]
    public void A_negative_warm_up_is_a_usage_error_that_names_the_option()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Tool(), "train", "--distributed", "--warmup-epochs", "-1", "--epochs", "1" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        string said = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(2, process.ExitCode);
        Assert.Contains("--warmup-epochs must be zero or more, not -1", said, StringComparison.Ordinal);
    }

    private static int Count(string text, string part)
    {
        int n = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + part.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    // The process mpirun started as rank `rank` (Open MPI gives each its rank in OMPI_COMM_WORLD_RANK).
    private static int RankPid(int mpirun, int rank)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                if (parent != mpirun) continue;
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains($"OMPI_COMM_WORLD_RANK={rank}")) return pid;
            }
            catch (IOException)
            {
                // the process ended while we looked
            }
        }
        throw new InvalidOperationException($"mpirun {mpirun} has no rank {rank}");
    }
}
