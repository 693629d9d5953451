// Where a batch is best prepared when the torch engine runs on the CPU: normalising and augmenting uint8 pixels on
// the host with the managed kernels (the loader's background thread) or on the engine's device with tensor
// operations (DeviceBatches), as a GPU would. Rounds alternate between the two.
//   prepare: batch preparation alone, images/s (28-px grey batches of 128 with the recipes' preset, 224-px colour
//            batches of 32 with fastai's preset; host includes the float upload, device the uint8 upload);
//   epoch:   a whole epoch of the ResNet-9 on the bundled Fashion-MNIST subset through the learner, seconds.
// Usage: dotnet run -c Release --project bench/DevicePrepare -- [rounds]
using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.TorchSharp;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;
using static TorchSharp.torch;
using Generator = MLNet.FastTrain.Engine.Generator;

int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
const int Threads = 2;
TorchRuntime.EnsureLoaded(Threads);
EngineSettings.Threads = Threads;
string root = AppContext.BaseDirectory;
while (!Directory.Exists(Path.Combine(root, "data", "fashion-mnist-mini"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("data/fashion-mnist-mini");
var (train, valid) = IdxDataset.Load(Path.Combine(root, "data", "fashion-mnist-mini"));

for (int r = 1; r <= rounds; r++)
{
    foreach (var (name, channels, side, batch, augmentation) in new[]
             {
                 ("28px grey, batch 128, BySize", 1, 28, 128, Augmentations.BySize()),
                 ("224px colour, batch 32, Default", 3, 224, 32, Augmentations.Default()),
             })
    {
        double host = Prepare(channels, side, batch, augmentation, onDevice: false);
        double device = Prepare(channels, side, batch, augmentation, onDevice: true);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"round {r} prepare {name}: host {host:F0} images/s, device {device:F0} images/s, device / host {device / host:F2}"));
    }
    double hostEpoch = Epoch(onDevice: false), deviceEpoch = Epoch(onDevice: true);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"round {r} epoch resnet9 on {train.Count} images: host {hostEpoch:F2} s, device {deviceEpoch:F2} s, host / device {hostEpoch / deviceEpoch:F2}"));
}

double Prepare(int channels, int side, int batch, Augmentation augmentation, bool onDevice)
{
    var g = new Generator(1);
    var pixels = new byte[batch * channels * side * side];
    for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)g.NextInt(256);
    float[] mean = [.. Enumerable.Repeat(0.45f, channels)], std = [.. Enumerable.Repeat(0.25f, channels)];
    int batches = Math.Max(4, 4096 / batch);
    var clock = new Stopwatch();
    for (int b = -2; b < batches; b++)
    {
        if (b == 0) clock.Start();
        var plan = augmentation.Plan(batch, channels, side, side, g);
        var prepared = new PixelBatch(pixels, batch, channels, side, side, mean, std, plan);
        using var scope = NewDisposeScope();
        using var tensorScope = TensorScope.Begin();
        if (onDevice)
        {
            DeviceBatches.Prepare(prepared, CPU).sum().item<float>();
            continue;
        }
        var images = prepared.ToImages();
        var host = empty([batch, channels, side, side], ScalarType.Float32);
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(images.AsSpan()).CopyTo(host.bytes);
        host.sum().item<float>();
    }
    return batches * batch / clock.Elapsed.TotalSeconds;
}

double Epoch(bool onDevice)
{
    var learner = Learner.ForImageClassification(train, valid, "resnet9", batchSize: 128, seed: 1);
    ((DataLoader)learner.TrainData).BatchTransform = Augmentations.BySize();
    learner.UseEngine((m, o) => new TorchEngine(m, o, "cpu", Threads) { PrepareOnDevice = onDevice });
    var clock = Stopwatch.StartNew();
    learner.Fit(1);
    double seconds = clock.Elapsed.TotalSeconds;
    learner.Engine.Release();
    return seconds;
}
