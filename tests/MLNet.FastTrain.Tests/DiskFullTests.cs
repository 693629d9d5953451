using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.TestUtilities;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>A disk that fills up while a file is written: a clear error, the previous file intact, nothing half-written left.</summary>
public sealed class DiskFullTests
{
    private static Learner NewLearner() => TestData.SeededLearner();

    private static float[] Weights(Learner l) => TestData.Weights(l);

    [SmallDiskFact]
    public void Replacing_a_file_on_a_full_disk_keeps_the_old_one_and_says_so()
    {
        using var disk = new SmallDisk(16 * 1024);
        string path = Path.Combine(disk.Path, "report.html");
        var old = new string('a', 9000);
        AtomicFile.WriteAllText(path, old);

        var e = Assert.Throws<DiskFullException>(() => AtomicFile.WriteAllText(path, new string('b', 12000)));
        Assert.Equal(path, e.Path);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("disk is full", e.Message, StringComparison.Ordinal);
        Assert.Contains("previous file", e.Message, StringComparison.Ordinal);
        Assert.InRange(e.FreeBytes!.Value, 4096, 8192);   // the temporary file's pages were given back before asking
        Assert.Equal(old, File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(disk.Path));
    }

    [SmallDiskFact]
    public void A_full_disk_at_a_checkpoint_stops_the_fit_and_the_last_checkpoint_resumes_bit_identically()
    {
        // The uninterrupted fit, writing its checkpoints to a roomy disk to learn their size.
        string roomy = Directory.CreateTempSubdirectory("ckpt-size-").FullName;
        var uninterrupted = NewLearner();
        uninterrupted.FitOneCycle(2, [0.05], extra: [new CheckpointCallback(roomy, everyBatches: 7, keep: 1)]);
        var expected = Weights(uninterrupted);
        long size = new FileInfo(Checkpoint.Latest(roomy)!).Length;
        Directory.Delete(roomy, recursive: true);

        // Room for one checkpoint and a half: the first is written, the second finds the disk full.
        using var disk = new SmallDisk(size * 3 / 2);

        var learner = NewLearner();
        var e = Assert.Throws<DiskFullException>(() => learner.FitOneCycle(2, [0.05], extra: [new CheckpointCallback(disk.Path, everyBatches: 7, keep: 3)]));
        string first = Path.Combine(disk.Path, "checkpoint-000000007.ftc");
        Assert.Equal(Path.Combine(disk.Path, "checkpoint-000000014.ftc"), e.Path);
        Assert.Equal([first], Directory.GetFiles(disk.Path));   // no half-written checkpoint beside it

        var resumed = NewLearner();
        resumed.FitOneCycle(2, [0.05], resume: Checkpoint.Load(first));
        Assert.Equal(expected, Weights(resumed));
    }
}
