// What the torch engine's step costs over a bare TorchSharp loop, in one process: the same TorchSharp network
// (built from the zoo's small ResNet), the same batch size and SGD, rounds alternating between
//   bare:   zero_grad, forward, cross-entropy, backward, step, loss.item() on torch tensors;
//   engine: TorchEngine.BeginStep / Forward / Backward / Step, as the learner drives it.
// The batches are Fashion-MNIST's first training images, normalised as the anchor does, when Debian's
// dataset-fashion-mnist is installed (libtorch's CPU kernels run at speeds that depend on the values: the anchor trains
// 35 % slower on random images than on these), else random images.
// Usage: dotnet run -c Release --project bench/TorchEngineOverhead -- [rounds] [steps]
using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.TorchSharp;
using MLNet.FastTrain.Vision.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4;
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
const int Batch = 128, Batches = 20;
TorchRuntime.EnsureLoaded(threads: 2);
torch.manual_seed(0);
var (images, labels) = Data();
Console.WriteLine($"data: {(File.Exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") ? "fashion-mnist" : "random")}");

for (int r = 0; r < rounds; r++)
{
    double bare = Bare(steps), engine = Engine(steps);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {r + 1}: bare {bare:F0} images/s, engine {engine:F0} images/s, engine / bare {engine / bare:F2}"));
}

double Bare(int n)
{
    var net = TorchModules.Build(ModelZoo.ResNetSmall(1, 10));
    var opt = torch.optim.SGD(net.parameters(), 0.05, momentum: 0.9, weight_decay: 5e-4);
    net.train();
    void Step(int i)
    {
        using var scope = torch.NewDisposeScope();
        var x = images.narrow(0, i % Batches * Batch, Batch);
        var y = labels.narrow(0, i % Batches * Batch, Batch);
        opt.zero_grad();
        var loss = F.cross_entropy(net.call(x), y);
        loss.backward();
        opt.step();
        loss.item<float>();
    }
    return Time(Step, n);
}

double Engine(int n)
{
    var model = ModelZoo.ResNetSmall(1, 10);
    var engine = new TorchEngine(model, new Sgd(model.Parameters(), 0.05, momentum: 0.9, weightDecay: 5e-4), "cpu", threads: 2);
    var batches = Enumerable.Range(0, Batches).Select(b => new MLNet.FastTrain.Vision.Datasets.Batch(
        MLNet.FastTrain.Engine.Tensor.FromArray(images.narrow(0, b * Batch, Batch).data<float>().ToArray(), Batch, 1, 28, 28),
        labels.narrow(0, b * Batch, Batch).data<long>().ToArray().Select(v => (int)v).ToArray())).ToArray();
    engine.Train(true);
    void Step(int i)
    {
        using var scope = engine.BeginStep();
        engine.Forward(batches[i % Batches]);
        engine.Backward();
        engine.Step();
    }
    return Time(Step, n);
}

(Tensor Images, Tensor Labels) Data()
{
    const string Folder = "/usr/share/datasets/fashion-mnist";
    if (!File.Exists(Path.Combine(Folder, "train-images-idx3-ubyte.gz")))
        return (torch.randn(Batch * Batches, 1, 28, 28), torch.randint(0, 10, [Batch * Batches], dtype: ScalarType.Int64));
    var (train, _) = MLNet.FastTrain.Vision.Datasets.IdxDataset.Load(Folder);
    var (mean, std) = train.ChannelStatistics();
    var pixels = new float[Batch * Batches * 784];
    for (int i = 0; i < Batch * Batches; i++)
    {
        var p = train.Pixels(i);
        for (int k = 0; k < 784; k++) pixels[i * 784 + k] = (p[k] / 255f - mean[0]) / std[0];
    }
    return (torch.tensor(pixels, [Batch * Batches, 1, 28, 28]),
        torch.tensor(train.Labels.ToArray()[..(Batch * Batches)].Select(l => (long)l).ToArray(), dtype: ScalarType.Int64));
}

static double Time(Action<int> step, int n)
{
    for (int i = 0; i < 5; i++) step(i);
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < n; i++) step(i);
    return n * Batch / clock.Elapsed.TotalSeconds;
}
