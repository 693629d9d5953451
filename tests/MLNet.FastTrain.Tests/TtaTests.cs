using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Transforms;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.FastTrain.Tests;

public class TtaTests(ITestOutputHelper output)
{
    private static ClassifierTransformer TrainedOnBundledData(out ImageDataset valid)
    {
        var ctx = new FastTrainContext(seed: 1, threads: 2);
        var (train, v) = ctx.Data.LoadIdx(TestUtilities.RepoPaths.Get("data", "fashion-mnist-mini"));
        valid = v;
        return ctx.Trainers.OneCycle(new OneCycleTrainer.Options { Architecture = "simple", LearningRate = 0.003, Epochs = 2, BatchSize = 32 }).Fit(train, valid);
    }

    [Fact]
    public void Tta_combines_passes_as_fastai_and_reports_both_accuracies()
    {
        var model = TrainedOnBundledData(out var valid);
        var plain = model.Transform(valid);

        // Beta = 1 keeps only the plain pass.
        var onlyPlain = new TtaScorer(model, new TtaScorer.Options { Beta = 1 }).Transform(valid);
        Assert.Equal(plain.Select(r => r.Score), onlyPlain.Select(r => r.Score));

        var tta = new TtaScorer(model, new TtaScorer.Options { Seed = 3 });
        var rows = tta.Transform(valid);
        Assert.All(rows, r => Assert.Equal(1.0, r.Score.Sum(), 4));
        Assert.NotEqual(plain.Select(r => r.Score[0]), rows.Select(r => r.Score[0]));
        Assert.Equal(rows.Select(r => r.Score), new TtaScorer(model, new TtaScorer.Options { Seed = 3 }).Transform(valid).Select(r => r.Score));

        var report = tta.Evaluate(valid);
        output.WriteLine($"plain {report.PlainAccuracy:P1}, TTA {report.TtaAccuracy:P1}");
        Assert.Equal(200, report.Items);
        Assert.InRange(report.TtaAccuracy, 0.3, 1);

        var max = new TtaScorer(model, new TtaScorer.Options { Mode = TtaMode.Max }).Transform(valid);
        Assert.All(max, r => Assert.Equal(1.0, r.Score.Sum(), 4));
    }

    [Fact]
    public void Flip_tta_scores_an_image_and_its_mirror_alike()
    {
        var model = TrainedOnBundledData(out var valid);
        var mirrored = new ImageDataset(
            Enumerable.Range(0, valid.Count).SelectMany(i => Mirror(valid.Pixels(i).ToArray(), 28, 28)).ToArray(),
            valid.Labels.ToArray(), 1, 28, 28, valid.Classes);
        var scorer = new TtaScorer(model, new TtaScorer.Options { Mode = TtaMode.Flips });
        var a = scorer.Transform(valid);
        var b = scorer.Transform(mirrored);
        for (int i = 0; i < a.Count; i++)
            for (int k = 0; k < 10; k++) Assert.Equal(a[i].Score[k], b[i].Score[k], 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TtaScorer(model, new TtaScorer.Options { AugmentedPasses = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TtaScorer(model, new TtaScorer.Options { Beta = 2 }));
    }

    private static byte[] Mirror(byte[] image, int h, int w)
    {
        var m = new byte[image.Length];
        for (int r = 0; r < h; r++) for (int c = 0; c < w; c++) m[r * w + c] = image[r * w + w - 1 - c];
        return m;
    }
}
