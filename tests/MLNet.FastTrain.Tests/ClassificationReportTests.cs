using MLNet.FastTrain.Metrics;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class ClassificationReportTests
{
    [Fact]
    public void Confusion_matrix_per_class_scores_and_top_losses_by_hand()
    {
        // Items (actual → predicted): a→a, a→b, b→b, b→b, c→a.
        float[][] p =
        [
            [0.7f, 0.2f, 0.1f], [0.3f, 0.6f, 0.1f], [0.1f, 0.8f, 0.1f], [0.2f, 0.5f, 0.3f], [0.5f, 0.4f, 0.1f],
        ];
        int[] labels = [0, 0, 1, 1, 2];
        var r = ClassificationReport.Compute(p, labels, ["a", "b", "c"]);
        Assert.Equal(new[,] { { 1, 1, 0 }, { 0, 2, 0 }, { 1, 0, 0 } }, r.ConfusionMatrix);
        Assert.Equal(0.6, r.Accuracy, 12);
        // a: precision 1/2, recall 1/2; b: precision 2/3, recall 1; c: nothing predicted, recall 0.
        Assert.Equal(0.5, r.PerClass[0].Precision, 12);
        Assert.Equal(0.5, r.PerClass[0].Recall, 12);
        Assert.Equal(2 / 3.0, r.PerClass[1].Precision, 12);
        Assert.Equal(0.8, r.PerClass[1].F1, 12);                  // 2·(2/3)·1 / (2/3 + 1)
        Assert.Equal(0, r.PerClass[2].F1);
        Assert.Equal(2, r.PerClass[1].Support);
        double ce = -(Math.Log(0.7) + Math.Log(0.3) + Math.Log(0.8) + Math.Log(0.5) + Math.Log(0.1)) / 5;
        Assert.Equal(ce, r.CrossEntropy, 6);
        var top = r.TopLosses(2);
        Assert.Equal(4, top[0].Index);                            // c predicted as a, p(c) = 0.1
        Assert.Equal((0, 2), (top[0].Predicted, top[0].Actual));
        Assert.Equal(1, top[1].Index);                            // p(a) = 0.3
    }

    [Fact]
    public void Mismatched_inputs_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => ClassificationReport.Compute([[1f, 0f]], [0, 1], ["a", "b"]));
        Assert.Throws<ArgumentException>(() => ClassificationReport.Compute([[1f, 0f]], [5], ["a", "b"]));
        Assert.Throws<ArgumentException>(() => ClassificationReport.Compute([[1f, 0f, 0f]], [0], ["a", "b"]));
    }
}
