// The recipe on the Fashion-MNIST subset bundled with the repository: find the learning rate, then SGD with warm
// restarts (cycle length 1, cycle multiplier 2) until the validation loss stops improving.
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Models;

string data = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "../../../../../data/fashion-mnist-mini");
var (train, valid) = IdxDataset.Load(data);
var trainLoader = new DataLoader(train, batchSize: 32, shuffle: true, seed: 1, dropLast: true);
var validLoader = new DataLoader(valid, batchSize: 256, shuffle: false, normalization: trainLoader.Normalization);

var learner = new Learner(ModelZoo.ResNetSmall(numClasses: train.Classes.Count), trainLoader, validLoader);
learner.Log += (_, message) => Console.WriteLine(message);
var result = Recipes.Run(learner, new RecipeOptions { Recipe = RecipeKind.FineTune });
Console.WriteLine($"accuracy {result.Validation!.Metrics["accuracy"]:P1} after {result.Epochs} epochs, lr {result.LearningRate:G3}");
