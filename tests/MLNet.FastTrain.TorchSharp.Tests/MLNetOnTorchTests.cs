using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.MLNet;
using MLNet.FastTrain.MLNet.Tests;
using Xunit;

namespace MLNet.FastTrain.Tests;

/// <summary>
/// The ML.NET trainers on the torch engine, in an application that references it (this project does; the ML.NET test
/// project deliberately does not, to test the message that names the missing package).
/// </summary>
public sealed class MLNetOnTorchTests : IDisposable
{
    private readonly ImageFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private (double MacroAccuracy, SgdrEstimator Trainer) FitSgdr(MLContext ml, string backend, string? device)
    {
        var options = PipelineFixture.QuickOptions();
        (options.Backend, options.Device) = (backend, device);
        var train = ml.Data.LoadFromEnumerable(_folder.Train);
        var test = ml.Data.LoadFromEnumerable(_folder.Test);
        var trainer = ml.MulticlassClassification.Trainers.Sgdr(options);
        var model = _folder.Front(ml).Append(trainer).Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        return (metrics.MacroAccuracy, trainer);
    }

    [Fact]
    public void Sgdr_trains_on_the_torch_engine_and_scores_as_well_as_on_the_managed_one()
    {
        var (torchAccuracy, torchTrainer) = FitSgdr(new MLContext(seed: 1), "torch", "cpu");
        var (managedAccuracy, managedTrainer) = FitSgdr(new MLContext(seed: 1), "managed", null);
        Assert.Equal("torch", torchTrainer.Learner!.Engine.Name);
        Assert.Equal("managed", managedTrainer.Learner!.Engine.Name);
        Assert.True(torchAccuracy > 0.45, $"macro accuracy {torchAccuracy:P1} on the torch engine");
        // The same seed, data and schedule: the engines differ only by float rounding, which 400 images amplify little.
        Assert.InRange(torchAccuracy - managedAccuracy, -0.1, 0.1);
    }

    [Fact]
    public void A_gpu_asked_through_MLContext_falls_back_to_the_cpu_torch_engine_or_fails_as_told()
    {
        var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
        var e = Assert.ThrowsAny<Exception>(() => FitSgdr(strict, "torch", null));
        Assert.Contains("CUDA", e.Message, StringComparison.Ordinal);

        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var messages = new List<string>();
        lenient.Log += (_, m) => messages.Add(m.Message);
        var (_, trainer) = FitSgdr(lenient, "torch", null);
        Assert.Equal("torch", trainer.Learner!.Engine.Name);
        Assert.Equal("cpu", trainer.Learner.Engine.Device);
        Assert.Contains(messages, m => m.Contains("fell back to the CPU", StringComparison.Ordinal));
    }
}
