// Transfer learning with the fine-tuning recipe: pretrain the small ResNet on Fashion-MNIST classes 0–4, then
// fine-tune it on 100 images per class of classes 5–9, and compare with training the same network from scratch on
// those 500 images for the same wall-clock time.
//
//   dotnet run -c Release --project samples/TransferLearning [-- FASHION_MNIST_DIR]
//
// Uses Debian's full set (/usr/share/datasets/fashion-mnist) when present, else the bundled subset.
using System.Diagnostics;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Models;

string dir = args.Length > 0 ? args[0]
    : Directory.Exists("/usr/share/datasets/fashion-mnist") ? "/usr/share/datasets/fashion-mnist"
    : Path.Combine(AppContext.BaseDirectory, "../../../../../data/fashion-mnist-mini");
var (all, allTest) = IdxDataset.Load(dir);

// The first perClass images of each of the five classes firstClass…firstClass+4, relabelled 0…4.
ImageDataset Pick(ImageDataset data, int firstClass, int perClass)
{
    var chosen = new List<int>();
    var counts = new int[5];
    for (int i = 0; i < data.Count; i++)
    {
        int k = data.LabelOf(i) - firstClass;
        if (k is < 0 or >= 5 || counts[k] >= perClass) continue;
        counts[k]++;
        chosen.Add(i);
    }
    var subset = data.Subset(chosen);
    var pixels = Enumerable.Range(0, subset.Count).SelectMany(i => subset.Pixels(i).ToArray()).ToArray();
    var labels = Enumerable.Range(0, subset.Count).Select(i => subset.LabelOf(i) - firstClass).ToArray();
    return new ImageDataset(pixels, labels, subset.Channels, subset.Height, subset.Width, data.Classes.Skip(firstClass).Take(5).ToArray());
}

var pretrainSet = Pick(all, 0, 1000);
var pretrainValid = Pick(allTest, 0, 200);
var target = Pick(all, 5, 100);
var targetTest = Pick(allTest, 5, 200);
Console.WriteLine($"pretraining on {pretrainSet.Count} images of classes 0–4; target: {target.Count} images of classes 5–9, tested on {targetTest.Count}");

// 1. Pretrain.
var pretrainLoader = new DataLoader(pretrainSet, 64, shuffle: true, seed: 1, dropLast: true);
var model = ModelZoo.ResNetSmall(numClasses: 5, generator: new Generator(1));
var pretrain = new Learner(model, pretrainLoader, new DataLoader(pretrainValid, 256, shuffle: false, normalization: pretrainLoader.Normalization));
pretrain.FitOneCycle(3, [0.003]);
Console.WriteLine($"pretrained: accuracy {pretrain.LastValidation!.Metrics["accuracy"]:P1} on classes 0–4");

// 2. Fine-tune on the 500 target images with the recipe (new head, discriminative rates).
var clock = Stopwatch.StartNew();
DifferentialFineTune.ReplaceHead(model, 5, new Generator(2));
var fineTune = new DifferentialFineTune(model);
var trainLoader = new DataLoader(target, 32, shuffle: true, seed: 3, dropLast: true, normalization: pretrainLoader.Normalization);
var testLoader = new DataLoader(targetTest, 256, shuffle: false, normalization: pretrainLoader.Normalization);
var learner = new Learner(model, trainLoader, testLoader, new AdamW(fineTune.CreateParamGroups()));
learner.Log += (_, m) => Console.WriteLine("  " + m);
FineTuneRecipe.Run(learner, fineTune);
double budget = clock.Elapsed.TotalSeconds;
double fineTuned = learner.Validate().Metrics["accuracy"];

// 3. The same network from scratch on the same 500 images, for the same time.
clock.Restart();
var scratchLoader = new DataLoader(target, 32, shuffle: true, seed: 3, dropLast: true);
var scratch = new Learner(ModelZoo.ResNetSmall(numClasses: 5, generator: new Generator(1)), scratchLoader,
    new DataLoader(targetTest, 256, shuffle: false, normalization: scratchLoader.Normalization));
int epochs = 0;
while (clock.Elapsed.TotalSeconds < budget)
{
    scratch.FitOneCycle(1, [0.003]);
    epochs++;
}
double fromScratch = scratch.Validate().Metrics["accuracy"];
Console.WriteLine($"fine-tuned: {fineTuned:P1} in {budget:F1} s; from scratch: {fromScratch:P1} after {epochs} epochs in {clock.Elapsed.TotalSeconds:F1} s");
