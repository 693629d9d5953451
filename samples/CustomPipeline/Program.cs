// The building blocks composed by hand: the learning-rate range test, then SGD with warm restarts at the rate it
// suggests (cycle length 1, cycle multiplier 2, a snapshot ensemble of the cycles' ends), then test-time augmentation.
using MLNet.FastTrain;

string data = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "../../../../../data/fashion-mnist-mini");
var ctx = new FastTrainContext(seed: 1);
var (train, valid) = ctx.Data.LoadIdx(data);

// 1. LrFinder: an exponential ramp of the learning rate over 100 mini-batches; model and optimizer are restored after.
var finder = ctx.Tuning.FindLearningRate(train, "resnet");
File.WriteAllText("lr-finder.svg", finder.ToSvg());
Console.WriteLine($"LR finder: {string.Join(", ", finder.Suggestions.Select(s => $"{s.Key} {s.Value:G3}"))} (plot: lr-finder.svg)");

// 2. SgdrTrainer: 3 cycles of 1, 2 and 4 epochs, cosine annealing every mini-batch, restarting at the suggested rate.
var trainer = ctx.Trainers.Sgdr(new SgdrTrainer.Options
{
    LearningRate = finder.Suggested, Cycles = 3, CycleLength = 1, CycleMult = 2, SnapshotEnsemble = true,
});
ClassifierTransformer model = trainer.Fit(train, valid);
Console.WriteLine($"SGDR: {model.EnsembleSize} snapshots, accuracy {model.Evaluate(valid).Accuracy:P1}");

// 3. TtaScorer: 4 passes with the training augmentations and the plain one, combined as 0.75 × mean(augmented) +
//    0.25 × plain (fastai's default), or the plain image and its mirror averaged. Which helps depends on how well
//    the model has learnt the augmentations' invariances; measure both on validation data.
foreach (var mode in new[] { TtaMode.Average, TtaMode.Flips })
{
    var tta = ctx.Scoring.Tta(model, new TtaScorer.Options { Mode = mode }).Evaluate(valid);
    Console.WriteLine($"TTA ({mode}): {tta.PlainAccuracy:P1} → {tta.TtaAccuracy:P1} ({tta.Gain * 100:+0.0;-0.0} points)");
}
var first = ctx.Scoring.Tta(model).Transform(valid)[0];
Console.WriteLine($"first validation image: {first.PredictedLabel} ({first.Score.Max():P0})");
