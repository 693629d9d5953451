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
    public TrainingEngine Create(Module model, Optimizer optimizer, string device, int? threads) => new TorchEngine(model, optimizer, device, threads);
}
