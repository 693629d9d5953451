using MLNet.FastTrain.Tuning;

namespace MLNet.FastTrain.MLNet;

/// <summary>How an image's colours reach the network.</summary>
public enum ColorMode
{
    /// <summary>Grey when the first training images have equal red, green and blue everywhere; otherwise RGB.</summary>
    Auto,

    /// <summary>One channel: the image converted to grey.</summary>
    Grey,

    /// <summary>Three channels: red, green, blue.</summary>
    Rgb,
}

/// <summary>What every image-classification trainer of this package takes; each trainer's <c>Options</c> adds its own.</summary>
public abstract class ImageClassifierOptions
{
    /// <summary>The label column: a key (<c>MapValueToKey</c> makes one). Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>
    /// The image column: raw image bytes (<c>LoadRawImageBytes</c>), an image (<c>LoadImages</c>, optionally after
    /// <c>ResizeImages</c>) or a known-size float pixel vector (<c>ExtractPixels</c>, planar). Default "Features".
    /// </summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The class probabilities written, in key order. Default "Score".</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>The predicted class written, of the label's key type. Default "PredictedLabel".</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

    /// <summary>A text column that names each row's file, quoted when an image cannot be decoded. Default "ImagePath" when present.</summary>
    public string? ImagePathColumnName { get; set; }

    /// <summary>The zoo network: "resnet" (default), "resnet-wide", "simple" (28 × 28 only), "resnet18" or "resnet34".</summary>
    public string Architecture { get; set; } = "resnet";

    /// <summary>
    /// The side images are brought to (shorter side resized, centre cropped). Default: the first image's size when
    /// neither side exceeds 64 pixels, otherwise 64. Pixel-vector columns keep their own size.
    /// </summary>
    public int? ImageSize { get; set; }

    /// <summary>Grey or RGB input. Default <see cref="ColorMode.Auto"/>.</summary>
    public ColorMode ColorMode { get; set; } = ColorMode.Auto;

    /// <summary>The peak learning rate; null (default) runs the LR finder first and takes its suggestion.</summary>
    public double? LearningRate { get; set; }

    /// <summary>The LR finder's rule when <see cref="LearningRate"/> is null. Default <see cref="LrSuggestion.Auto"/>.</summary>
    public LrSuggestion Suggestion { get; set; } = LrSuggestion.Auto;

    /// <summary>Images per batch; null (default) picks one from the data size.</summary>
    public int? BatchSize { get; set; }

    /// <summary>Train with the recipes' augmentation (Augmentations.BySize: fastai's flips, rotation, zoom, warp and lighting above 32 px; flips and small shifts at 32 px and below). Default true.</summary>
    public bool Augment { get; set; } = true;

    /// <summary>
    /// Stop when the validation loss at the end of a cycle has not improved for this many further cycles, keeping
    /// the best weights (0, the default: the first cycle that ends no better stops it; null: never stop early).
    /// </summary>
    public int? EarlyStoppingPatience { get; set; } = 0;

    /// <summary>Wall-clock budget for the whole fit (LR finder included). Default none.</summary>
    public TimeSpan? TimeBudget { get; set; }

    /// <summary>
    /// The engine that trains: "auto" (the default: the torch engine on a GPU when MLNet.FastTrain.TorchSharp and a CUDA
    /// libtorch are referenced and a GPU is usable, otherwise the managed engine), "managed" or "torch".
    /// </summary>
    public string Backend { get; set; } = "auto";

    /// <summary>
    /// Where it trains: "cpu", "cuda" or "cuda:N"; null (the default) follows <c>MLContext.GpuDeviceId</c> (a GPU when it
    /// is set) and otherwise lets <see cref="Backend"/> decide. <c>MLContext.FallbackToCpu</c> says whether a GPU
    /// that is not there falls back to the CPU or fails.
    /// </summary>
    public string? Device { get; set; }

    /// <summary>
    /// "float32" (the default) or "bfloat16": the torch engine computes convolutions and linear layers in bfloat16
    /// with float32 master weights (fast on CPUs with AMX and on GPUs); bfloat16 takes the torch engine.
    /// </summary>
    public string Precision { get; set; } = "float32";

    /// <summary>
    /// Train data-parallel with the other processes of an MPI job (docs/design.md §11; start the collective with
    /// MLNet.FastTrain.Mpi's <c>MpiCollective.Start()</c> and the program with <c>mpirun -np N</c>): each process
    /// trains on its shard with <see cref="BatchSize"/> images a batch and the gradients are averaged; the LR finder
    /// runs once. Every rank returns the same model; save it on rank 0. Null (the default): this process alone.
    /// </summary>
    public Callbacks.DataParallelOptions? Distributed { get; set; }

    /// <summary>Seed of the network's initialisation, the shuffling and the augmentation. Default 1.</summary>
    public int Seed { get; set; } = 1;

    /// <summary>Leave out rows whose image cannot be decoded (they are logged) instead of failing. Default false.</summary>
    public bool SkipInvalid { get; set; }

    /// <summary>The share of the training rows held out for validation when no validation set is given. Default 0.1; 0 trains on all.</summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>Score with test-time augmentation (mirror and shifted crops, fastai's β mix) inside the saved model. Default false.</summary>
    public bool TestTimeAugmentation { get; set; }

    /// <summary>fastai's β: the weight of the plain image in test-time augmentation. Default 0.25.</summary>
    public double TtaBeta { get; set; } = 0.25;
}
