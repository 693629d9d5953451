using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Engines;
using TorchSharp;

namespace MLNet.FastTrain.TorchSharp;

/// <summary>How <see cref="EngineChoice"/> finds the torch engine when this package is referenced.</summary>
public sealed class TorchEngineProvider : ITrainingEngineProvider
{
    /// <inheritdoc />
    public string Name => "torch";

    /// <inheritdoc />
    public bool GpuAvailable
    {
        get
        {
            if (!TorchRuntime.IsLoaded && !TorchRuntime.CudaMayBeUsable()) return false;
            try
            {
                TorchRuntime.EnsureLoaded();
                return torch.cuda.is_available();
            }
            catch (TorchEngineException)
            {
                return false;
            }
        }
    }

    /// <inheritdoc />
    public TrainingEngine Create(Module model, Optimizer optimizer, string device, int? threads, string precision) =>
        new TorchEngine(model, optimizer, device, threads, precision switch
        {
            "float32" => TorchPrecision.Float32,
            "bfloat16" => TorchPrecision.BFloat16,
            _ => throw new ArgumentException($"Unknown precision '{precision}': use float32 or bfloat16.", nameof(precision)),
        });
}
