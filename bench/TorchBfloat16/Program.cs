// Whether libtorch trains faster in bfloat16 than in float32 on this CPU: the same TorchSharp network (built from the
// zoo) in float32 and converted to bfloat16 (module.to(BFloat16), bfloat16 inputs, the loss in float32), SGD with
// momentum, rounds alternating between the two in one process.
// Usage: dotnet run -c Release --project bench/TorchBfloat16 -- [rounds] [steps]
using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.TorchSharp;
using MLNet.FastTrain.Vision.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
TorchRuntime.EnsureLoaded(threads: 2);
foreach (var (name, build, batch, channels, side) in new (string, Func<nn.Module<Tensor, Tensor>>, int, int, int)[]
         {
             ("resnet18-imagenet @64, batch 32", () => TorchModules.Build(ModelZoo.ResNet18ImageNet(3, 10)), 32, 3, 64),
             ("small ResNet @28, batch 128", () => TorchModules.Build(ModelZoo.ResNetSmall(1, 10)), 128, 1, 28),
         })
{
    for (int r = 1; r <= rounds; r++)
    {
        double f32 = Run(build, batch, channels, side, ScalarType.Float32);
        double bf16 = Run(build, batch, channels, side, ScalarType.BFloat16);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} round {r}: float32 {f32:F1} images/s, bfloat16 {bf16:F1} images/s, bf16 / f32 {bf16 / f32:F2}"));
    }
}

double Run(Func<nn.Module<Tensor, Tensor>> build, int batch, int channels, int side, ScalarType dtype)
{
    torch.manual_seed(0);
    var net = build();
    net.to(dtype);
    var opt = torch.optim.SGD(net.parameters(), 0.01, momentum: 0.9);
    var x = torch.randn(batch, channels, side, side).to(dtype);
    var y = torch.randint(0, 10, [batch], dtype: ScalarType.Int64);
    net.train();
    void Step()
    {
        using var scope = torch.NewDisposeScope();
        opt.zero_grad();
        var loss = F.cross_entropy(net.call(x).to(ScalarType.Float32), y);
        loss.backward();
        opt.step();
        loss.item<float>();
    }
    for (int i = 0; i < 3; i++) Step();
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < steps; i++) Step();
    double rate = steps * batch / clock.Elapsed.TotalSeconds;
    net.Dispose();
    return rate;
}
