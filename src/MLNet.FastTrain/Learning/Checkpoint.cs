using System.Globalization;
using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Serialization;

namespace MLNet.FastTrain.Learning;

/// <summary>
/// Everything needed to resume a fit exactly: weights and buffers, optimizer state and hyperparameters, the random
/// state, and the position (epoch, batch, schedule step). Stored as one model file, written atomically.
/// </summary>
public sealed class Checkpoint
{
    private Checkpoint(StateDict model, StateDict optimizer, ulong[] random, int epochs, int nextEpoch, int nextBatch, int nextStep, int epochsTrainedAtEpochStart, int ranks)
    {
        Ranks = ranks;
        Model = model;
        Optimizer = optimizer;
        RandomState = random;
        Epochs = epochs;
        NextEpoch = nextEpoch;
        NextBatch = nextBatch;
        NextStep = nextStep;
        EpochsTrainedAtEpochStart = epochsTrainedAtEpochStart;
    }

    /// <summary>Model weights and buffers.</summary>
    public StateDict Model { get; }

    /// <summary>Optimizer state and group hyperparameters.</summary>
    public StateDict Optimizer { get; }

    /// <summary>The state of <see cref="Generator.Default"/>.</summary>
    public IReadOnlyList<ulong> RandomState { get; }

    /// <summary>Epochs of the fit the checkpoint belongs to.</summary>
    public int Epochs { get; }

    /// <summary>The epoch (of the fit) to continue with.</summary>
    public int NextEpoch { get; }

    /// <summary>The batch of that epoch to continue with.</summary>
    public int NextBatch { get; }

    /// <summary>The schedule step to continue with.</summary>
    public int NextStep { get; }

    /// <summary>The learner's lifetime epoch count when epoch <see cref="NextEpoch"/> started (selects its shuffle).</summary>
    public int EpochsTrainedAtEpochStart { get; }

    /// <summary>The number of data-parallel processes of the run (1 for one process): a resume needs as many.</summary>
    public int Ranks { get; }

    /// <summary>Takes a checkpoint of a learner after the current batch (or, with <paramref name="afterEpoch"/>, after the current epoch).</summary>
    public static Checkpoint Take(Learner learner, bool afterEpoch)
    {
        ArgumentNullException.ThrowIfNull(learner);
        int batches = learner.TrainData.BatchCount;
        bool epochDone = afterEpoch || learner.BatchIndex + 1 >= batches;
        int nextEpoch = epochDone ? learner.Epoch + 1 : learner.Epoch;
        int nextBatch = epochDone ? 0 : learner.BatchIndex + 1;
        int nextStep = afterEpoch ? learner.Step : learner.Step + 1;
        // During an epoch EpochsTrained still counts the epochs before it; after AfterEpoch it includes it.
        int epochsTrained = afterEpoch || !epochDone ? learner.EpochsTrained : learner.EpochsTrained + 1;
        return new Checkpoint(learner.Engine.ModelState(), learner.Engine.OptimizerState(), Generator.Default.GetState(),
            learner.Epochs, nextEpoch, nextBatch, nextStep, epochsTrained, learner.Collective.Size);
    }

    internal void ApplyTo(Learner learner)
    {
        learner.Engine.LoadModelState(Model);
        learner.Engine.LoadOptimizerState(Optimizer);
        Generator.Default.SetState(RandomState.ToArray());
        learner.SetEpochsTrained(EpochsTrainedAtEpochStart);
    }

    /// <summary>Writes the checkpoint (to a temporary name, then renamed).</summary>
    public void Save(string path)
    {
        var state = new StateDict();
        foreach (var (k, v) in Model) state.Add("model." + k, v);
        foreach (var (k, v) in Optimizer) state.Add("optimizer." + k, v);
        var inv = CultureInfo.InvariantCulture;
        ModelFile.Save(path, state, new Dictionary<string, string>
        {
            ["kind"] = "checkpoint",
            ["random"] = string.Join(",", RandomState.Select(v => v.ToString(inv))),
            ["epochs"] = Epochs.ToString(inv),
            ["next_epoch"] = NextEpoch.ToString(inv),
            ["next_batch"] = NextBatch.ToString(inv),
            ["next_step"] = NextStep.ToString(inv),
            ["epochs_trained"] = EpochsTrainedAtEpochStart.ToString(inv),
            ["ranks"] = Ranks.ToString(inv),
        });
    }

    /// <summary>Reads a checkpoint file.</summary>
    /// <exception cref="ModelFileException">The file is not a readable checkpoint.</exception>
    public static Checkpoint Load(string path)
    {
        var (state, meta) = ModelFile.Load(path);
        if (meta.GetValueOrDefault("kind") != "checkpoint")
            throw new ModelFileException(path, ModelFileError.Damaged, "it is a model file but not a checkpoint.");
        try
        {
            var inv = CultureInfo.InvariantCulture;
            int Int(string key) => int.Parse(meta[key], inv);
            var model = new StateDict();
            var optimizer = new StateDict();
            foreach (var (k, v) in state)
            {
                if (k.StartsWith("model.", StringComparison.Ordinal)) model.Add(k["model.".Length..], v);
                else if (k.StartsWith("optimizer.", StringComparison.Ordinal)) optimizer.Add(k["optimizer.".Length..], v);
                else throw new FormatException($"unexpected entry '{k}'");
            }
            var random = meta["random"].Split(',').Select(v => ulong.Parse(v, inv)).ToArray();
            int ranks = meta.ContainsKey("ranks") ? Int("ranks") : 1; // written before data-parallel training: one process
            if (ranks < 1) throw new FormatException($"ranks {ranks}");
            return new Checkpoint(model, optimizer, random, Int("epochs"), Int("next_epoch"), Int("next_batch"), Int("next_step"), Int("epochs_trained"), ranks);
        }
        catch (Exception e) when (e is FormatException or KeyNotFoundException or OverflowException)
        {
            throw new ModelFileException(path, ModelFileError.Damaged, $"its checkpoint metadata is unreadable ({e.Message}).");
        }
    }

    /// <summary>The newest checkpoint file in a folder, or null.</summary>
    public static string? Latest(string directory) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory, "checkpoint-*.ftc").OrderBy(f => f, StringComparer.Ordinal).LastOrDefault() : null;
}

/// <summary>
/// Writes a <see cref="Checkpoint"/> every <see cref="EveryBatches"/> batches (or after every epoch when 0) into a
/// folder, keeping the newest <see cref="Keep"/>. File names sort by training position.
/// </summary>
public sealed class CheckpointCallback(string directory, int everyBatches = 0, int keep = 3) : Callback
{
    /// <summary>The folder.</summary>
    public string Directory { get; } = directory;

    /// <summary>Batches between checkpoints; 0 means after each epoch.</summary>
    public int EveryBatches { get; } = everyBatches;

    /// <summary>How many checkpoint files to keep.</summary>
    public int Keep { get; } = Math.Max(1, keep);

    /// <inheritdoc />
    public override int Order => 50; // after everything that changes state in the same event

    /// <inheritdoc />
    public override void AfterStep(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (EveryBatches > 0 && (learner.Step + 1) % EveryBatches == 0) Write(Checkpoint.Take(learner, afterEpoch: false), learner);
    }

    /// <inheritdoc />
    public override void AfterEpoch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (EveryBatches == 0) Write(Checkpoint.Take(learner, afterEpoch: true), learner);
    }

    /// <summary>Writes a checkpoint of the state after the current batch (call from a batch event) and returns its path.</summary>
    public string WriteAfterBatch(Learner learner) => Write(Checkpoint.Take(learner, afterEpoch: false), learner);

    /// <summary>The file this callback wrote last in this process, or null.</summary>
    public string? LastWritten { get; private set; }

    private string Write(Checkpoint checkpoint, Learner learner)
    {
        var path = Path.Combine(Directory, string.Create(CultureInfo.InvariantCulture, $"checkpoint-{checkpoint.NextStep:D9}.ftc"));
        if (learner.Collective.Rank != 0) return LastWritten = path; // the ranks hold the same state; rank 0 writes it
        System.IO.Directory.CreateDirectory(Directory);
        checkpoint.Save(path);
        foreach (var old in System.IO.Directory.GetFiles(Directory, "checkpoint-*.ftc").OrderByDescending(f => f, StringComparer.Ordinal).Skip(Keep))
            File.Delete(old);
        return LastWritten = path;
    }
}

/// <summary>
/// Stops a fit cleanly when a cancellation is requested (Ctrl+C), at the end of the batch that is running, after
/// writing a checkpoint of that moment when a <see cref="CheckpointCallback"/> is given, so the fit can be resumed.
/// </summary>
public sealed class CancelOnRequest(CancellationToken token, CheckpointCallback? checkpoints = null) : Callback
{
    /// <summary>The checkpoint written when the fit was cancelled, if any.</summary>
    public string? WrittenCheckpoint { get; private set; }

    /// <inheritdoc />
    public override int Order => 60; // after the checkpoint callback

    /// <summary>
    /// A cancellation between epochs: the checkpoint written at the end of the last epoch holds this very state, so
    /// the fit stops and names it (nothing has trained since).
    /// </summary>
    public override void BeforeEpoch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        // Data-parallel ranks stop together: a signal that reached one rank stops them all at the same point.
        if (!learner.StopRequested(token) || checkpoints is not { EveryBatches: 0, LastWritten: { } last }) return;
        WrittenCheckpoint = last;
        throw new CancelFitException($"cancelled; checkpoint written to {WrittenCheckpoint}");
    }

    /// <inheritdoc />
    public override void AfterBatch(Learner learner)
    {
        ArgumentNullException.ThrowIfNull(learner);
        if (!learner.StopRequested(token)) return;
        if (checkpoints is not null)
        {
            WrittenCheckpoint = checkpoints.WriteAfterBatch(learner);
            // Data-parallel ranks leave together once rank 0 has written: mpirun ends the job when the first rank exits.
            learner.Collective.Barrier();
        }
        throw new CancelFitException(WrittenCheckpoint is null ? "cancelled" : $"cancelled; checkpoint written to {WrittenCheckpoint}");
    }
}
