using MLNet.FastTrain.Engine;

namespace MLNet.FastTrain;

/// <summary>
/// The entry point, in ML.NET's idiom: one context per application or experiment, holding the seed, the thread count
/// and the log, with catalogs of components: <see cref="Data"/>, <see cref="Trainers"/>, <see cref="Tuning"/> and
/// <see cref="Model"/> and <see cref="Scoring"/>.
/// </summary>
/// <example>
/// <code>
/// var ctx = new FastTrainContext(seed: 1);
/// var (train, valid) = ctx.Data.LoadIdx("data/fashion-mnist-mini");
/// var model = ctx.Trainers.Sgdr().Fit(train, valid);
/// var rows = model.Transform(valid);            // PredictedLabel and Score per image
/// ctx.Model.Save(model, "model.ftm");
/// </code>
/// </example>
public sealed class FastTrainContext
{
    /// <summary>Creates a context.</summary>
    /// <param name="seed">Seeds initialisation, shuffling and every other random choice; the same seed and thread count give the same model.</param>
    /// <param name="threads">Cores to use (default: all, or FASTTRAIN_THREADS).</param>
    public FastTrainContext(int? seed = null, int? threads = null)
    {
        if (seed is < 0) throw new ArgumentOutOfRangeException(nameof(seed), $"The seed must be non-negative, not {seed}.");
        Seed = (ulong)(seed ?? 0);
        if (threads is int t) EngineSettings.Threads = t;
        Generator.Default.ManualSeed(Seed);
        Data = new DataCatalog(this);
        Trainers = new TrainersCatalog(this);
        Tuning = new TuningCatalog(this);
        Model = new ModelCatalog();
        Scoring = new ScoringCatalog();
    }

    /// <summary>The seed.</summary>
    public ulong Seed { get; }

    /// <summary>Loading data and making loaders.</summary>
    public DataCatalog Data { get; }

    /// <summary>Trainers: SGDR and one-cycle.</summary>
    public TrainersCatalog Trainers { get; }

    /// <summary>The learning-rate finder.</summary>
    public TuningCatalog Tuning { get; }

    /// <summary>Saving and loading trained models.</summary>
    public ModelCatalog Model { get; }

    /// <summary>Test-time augmentation.</summary>
    public ScoringCatalog Scoring { get; }

    /// <summary>Training progress and messages (epoch summaries, the LR finder's suggestion, why training stopped).</summary>
    public event EventHandler<string>? Log;

    internal void Write(object? sender, string message) => Log?.Invoke(sender ?? this, message);
}
