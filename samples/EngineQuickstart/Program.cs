// Trains the reference "simple" net on the Fashion-MNIST subset bundled in the repository, using only the
// engine: tensors, modules, autograd and SGD with momentum. Prints the loss per epoch and the test accuracy.
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;

const int Epochs = 3, Batch = 32;
string dataDir = args.Length > 0 ? args[0] : FindData();
var (trainBytes, trainLabels) = ReadSplit(dataDir, "train");
var (testBytes, testLabels) = ReadSplit(dataDir, "t10k");
double mean = trainBytes.Average(b => b / 255.0);
double std = Math.Sqrt(trainBytes.Average(b => Math.Pow(b / 255.0 - mean, 2)));
var xTrain = ToTensor(trainBytes, mean, std);
var xTest = ToTensor(testBytes, mean, std);

var generator = new Generator(1);
var net = new Sequential(
    new Conv2d(1, 32, 3, generator: generator), new ReLU(),
    new Conv2d(32, 64, 3, generator: generator), new ReLU(), new MaxPool2d(2),
    new Flatten(), new Linear(9216, 128, generator: generator), new ReLU(), new Linear(128, 10, generator: generator));
var optimizer = new Sgd(net.Parameters(), learningRate: 0.03, momentum: 0.9, weightDecay: 5e-4);

Console.WriteLine($"{trainLabels.Length} training and {testLabels.Length} test images from {dataDir}");
var order = Enumerable.Range(0, trainLabels.Length).ToArray();
var clock = Stopwatch.StartNew();
for (int epoch = 1; epoch <= Epochs; epoch++)
{
    generator.Shuffle<int>(order);
    double total = 0;
    int batches = 0;
    for (int start = 0; start + Batch <= order.Length; start += Batch)
    {
        var xb = Tensor.Zeros(Batch, 1, 28, 28);
        var yb = new int[Batch];
        for (int i = 0; i < Batch; i++)
        {
            xTrain.Narrow(order[start + i], 1).AsSpan().CopyTo(xb.AsSpan().Slice(i * 784, 784));
            yb[i] = trainLabels[order[start + i]];
        }
        optimizer.ZeroGrad();
        var loss = Functional.CrossEntropy(net.Forward(xb), yb);
        loss.Backward();
        optimizer.Step();
        total += loss.Item();
        batches++;
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {epoch}: loss {total / batches:F4} ({clock.Elapsed.TotalSeconds:F1} s)"));
}

net.Eval();
using (GradRecorder.NoGrad())
{
    var predicted = net.Forward(xTest).Argmax();
    double accuracy = predicted.Where((p, i) => p == testLabels[i]).Count() / (double)testLabels.Length;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test accuracy {accuracy:P1}"));
}

static string FindData()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MLNet.FastTrain.sln"))) dir = dir.Parent;
    return dir is null
        ? throw new DirectoryNotFoundException("Pass the folder of the IDX files as the first argument.")
        : Path.Combine(dir.FullName, "data", "fashion-mnist-mini");
}

static (byte[] Images, int[] Labels) ReadSplit(string dir, string split) =>
    (ReadIdx(Path.Combine(dir, $"{split}-images-idx3-ubyte.gz")), ReadIdx(Path.Combine(dir, $"{split}-labels-idx1-ubyte.gz")).Select(b => (int)b).ToArray());

static byte[] ReadIdx(string path)
{
    using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
    using var ms = new MemoryStream();
    gz.CopyTo(ms);
    var data = ms.ToArray();
    int rank = data[3];
    return data[(4 + 4 * rank)..];
}

static Tensor ToTensor(byte[] bytes, double mean, double std)
{
    var t = Tensor.Zeros(bytes.Length / 784, 1, 28, 28);
    var s = t.AsSpan();
    for (int i = 0; i < s.Length; i++) s[i] = (float)((bytes[i] / 255.0 - mean) / std);
    return t;
}
