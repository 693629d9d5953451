using Assembly = System.Reflection.Assembly;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;

namespace MLNet.FastTrain.Engines;

/// <summary>An engine other than the managed one, found in its own assembly (the torch engine's package).</summary>
public interface ITrainingEngineProvider
{
    /// <summary>The engine's name ("torch").</summary>
    string Name { get; }

    /// <summary>Whether a GPU is usable by this engine here.</summary>
    bool GpuAvailable { get; }

    /// <summary>
    /// Builds the engine for a description on <paramref name="device"/> ("cpu", "cuda", "cuda:N"), computing in
    /// <paramref name="precision"/> ("float32" or "bfloat16").
    /// </summary>
    TrainingEngine Create(Module model, Optimizer optimizer, string device, int? threads, string precision);
}

/// <summary>
/// Which engine trains and where: <c>--backend managed|torch|auto</c> and <c>--device cpu|cuda[:N]|auto</c>. The
/// default, auto, takes the torch engine on a GPU when its package is referenced and a GPU is usable; on the CPU it
/// takes the engine measured faster for the network (docs/performance.md, "Two engines"): the torch engine for the
/// ImageNet-layout ResNets when its package is referenced, the managed engine for the small reference networks.
/// </summary>
/// <param name="Backend">"auto", "managed" or "torch".</param>
/// <param name="Device">"auto", "cpu", "cuda" or "cuda:N".</param>
/// <param name="Threads">CPU threads for the engine (libtorch's intra-op threads on the torch engine), or null.</param>
/// <param name="Precision">
/// "float32" (the default) or "bfloat16": the torch engine's convolutions and linear layers in bfloat16 with float32
/// master weights (docs/performance.md, "bfloat16"); the managed engine computes in float32 only, so bfloat16 takes
/// the torch engine under auto.
/// </param>
/// <param name="FallbackToCpu">When a GPU is asked for and none is usable: train on the CPU (true) or fail (false).</param>
public sealed record EngineChoice(string Backend = "auto", string Device = "auto", int? Threads = null, bool FallbackToCpu = false, string Precision = "float32")
{
    /// <summary>The torch engine's assembly and provider type, loaded only when it is asked for.</summary>
    public const string TorchAssembly = "MLNet.FastTrain.TorchSharp", TorchProvider = "MLNet.FastTrain.TorchSharp.TorchEngineProvider";

    /// <summary>
    /// The zoo networks libtorch trains faster than the managed engine on a 2-core AVX-512 AMD EPYC (ResNet-18 at 64 px:
    /// 1.13× the images per second, median of three alternating rounds); for "simple" the two are level and for the
    /// small ResNets the managed engine is 1.6× faster.
    /// </summary>
    public static IReadOnlySet<string> FasterOnTorchCpu { get; } = new HashSet<string>(StringComparer.Ordinal) { "resnet18", "resnet34", "resnet18-imagenet" };

    /// <summary>
    /// The factory for <see cref="Learning.Learner.UseEngine"/>, or null for the managed engine.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown backend or device, or a GPU for the managed engine.</exception>
    /// <exception cref="InvalidOperationException">The torch engine was asked for and its package is not referenced, or a GPU was asked for and none is usable.</exception>
    /// <param name="description">What was chosen and why.</param>
    /// <param name="architecture">The zoo network being trained, when known: auto on the CPU chooses by it.</param>
    public Func<Module, Optimizer, TrainingEngine>? Resolve(out string description, string? architecture = null)
    {
        string backend = Backend.Trim().ToLowerInvariant(), device = Device.Trim().ToLowerInvariant();
        if (backend is not ("auto" or "managed" or "torch")) throw new ArgumentException($"Unknown backend '{Backend}': use auto, managed or torch.");
        bool gpu = device.StartsWith("cuda", StringComparison.Ordinal);
        if (device is not ("auto" or "cpu") && !gpu) throw new ArgumentException($"Unknown device '{Device}': use auto, cpu, cuda or cuda:N.");
        string precision = Precision.Trim().ToLowerInvariant();
        if (precision is not ("float32" or "bfloat16")) throw new ArgumentException($"Unknown precision '{Precision}': use float32 or bfloat16.");
        if (precision == "bfloat16")
        {
            if (backend == "managed") throw new ArgumentException("The managed engine computes in float32 only; bfloat16 needs the torch engine (--backend torch or auto).");
            backend = "torch";
        }
        if (backend == "managed")
        {
            if (gpu) throw new ArgumentException($"The managed engine runs on the CPU only; for '{Device}' use the torch engine (--backend torch).");
            description = "managed engine on the CPU";
            return null;
        }
        var provider = FindTorch(required: backend == "torch" || (gpu && !FallbackToCpu));
        if (provider is null && gpu) return FallBack(out description);   // a GPU was asked for, may fall back, and there is no torch engine
        if (backend == "auto" && device != "cpu" && provider is { GpuAvailable: true })
            return Torch(provider, gpu ? device : "cuda", "auto: a GPU is usable", out description);
        if (backend == "auto" && !gpu && provider is not null && architecture is not null && FasterOnTorchCpu.Contains(architecture))
            return Torch(provider, "cpu", $"auto: measured faster than the managed engine for {architecture} on the CPU", out description);
        if (backend == "auto" && !gpu)
        {
            description = provider is null ? "managed engine on the CPU (auto: the torch engine's package is not referenced)" : "managed engine on the CPU (auto: no usable GPU)";
            return null;
        }
        if (gpu && !provider!.GpuAvailable)
        {
            if (!FallbackToCpu)
                throw new InvalidOperationException($"Device '{Device}' was asked for, but libtorch sees no usable CUDA GPU: reference a CUDA build of libtorch "
                    + "(libtorch-cuda-12.8-linux-x64 or libtorch-cuda-12.8-win-x64) and install the NVIDIA driver, use --device cpu, or allow falling back to the CPU.");
            return backend == "torch" ? Torch(provider, "cpu", "no usable GPU, fell back to the CPU", out description) : FallBack(out description);
        }
        return Torch(provider!, device == "auto" ? "cpu" : device, "asked for", out description);
    }

    /// <summary>Moves <paramref name="learner"/> onto the chosen engine (nothing to do for the managed one) and says which it is.</summary>
    /// <inheritdoc cref="Resolve" path="/exception"/>
    public string ApplyTo(Learning.Learner learner, string? architecture = null)
    {
        ArgumentNullException.ThrowIfNull(learner);
        var factory = Resolve(out string description, architecture);
        if (factory is not null) learner.UseEngine(factory);
        return description;
    }

    private static Func<Module, Optimizer, TrainingEngine>? FallBack(out string description)
    {
        description = "managed engine on the CPU (no usable GPU, fell back to the CPU)";
        return null;
    }

    private Func<Module, Optimizer, TrainingEngine> Torch(ITrainingEngineProvider provider, string device, string why, out string description)
    {
        string precision = Precision.Trim().ToLowerInvariant();
        description = $"torch engine on {device}{(precision == "float32" ? "" : " in " + precision)} ({why})";
        int? threads = Threads;
        return (model, optimizer) => provider.Create(model, optimizer, device, threads, precision);
    }

    private static ITrainingEngineProvider? FindTorch(bool required)
    {
        Assembly assembly;
        try
        {
            assembly = Assembly.Load(TorchAssembly);
        }
        catch (FileNotFoundException) when (!required)
        {
            return null;
        }
        catch (FileNotFoundException e)
        {
            throw new InvalidOperationException($"The torch engine needs the {TorchAssembly} package and a libtorch package (TorchSharp-cpu, or libtorch-cuda-12.8-linux-x64 for a GPU) referenced by the application.", e);
        }
        var type = assembly.GetType(TorchProvider, throwOnError: true)!;
        return (ITrainingEngineProvider)Activator.CreateInstance(type)!;
    }
}
