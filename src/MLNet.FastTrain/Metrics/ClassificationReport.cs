namespace MLNet.FastTrain.Metrics;

/// <summary>Precision, recall and F1 of one class, and how many items truly belong to it.</summary>
public sealed record ClassMetrics(string Class, double Precision, double Recall, double F1, int Support);

/// <summary>An item the model got most wrong: its index, loss (−log p of the true class), prediction and truth.</summary>
public sealed record TopLoss(int Index, double Loss, int Predicted, int Actual, float Probability);

/// <summary>
/// A full evaluation of a classifier on labelled items: accuracy, cross-entropy, the confusion matrix
/// (rows: actual, columns: predicted), per-class precision/recall/F1, and the top losses.
/// </summary>
public sealed class ClassificationReport
{
    private ClassificationReport(IReadOnlyList<string> classes, int[,] confusion, double crossEntropy, IReadOnlyList<TopLoss> byLoss)
    {
        Classes = classes;
        ConfusionMatrix = confusion;
        CrossEntropy = crossEntropy;
        _byLoss = byLoss;
        int c = classes.Count, total = 0, correct = 0;
        var perClass = new List<ClassMetrics>(c);
        for (int k = 0; k < c; k++)
        {
            int tp = confusion[k, k], actual = 0, predicted = 0;
            for (int j = 0; j < c; j++) { actual += confusion[k, j]; predicted += confusion[j, k]; }
            double precision = predicted == 0 ? 0 : (double)tp / predicted;
            double recall = actual == 0 ? 0 : (double)tp / actual;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            perClass.Add(new ClassMetrics(classes[k], precision, recall, f1, actual));
            total += actual;
            correct += tp;
        }
        PerClass = perClass;
        Accuracy = total == 0 ? double.NaN : (double)correct / total;
    }

    private readonly IReadOnlyList<TopLoss> _byLoss;

    /// <summary>Class names.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>counts[actual, predicted].</summary>
    public int[,] ConfusionMatrix { get; }

    /// <summary>Fraction of items predicted right.</summary>
    public double Accuracy { get; }

    /// <summary>Mean −log p(true class).</summary>
    public double CrossEntropy { get; }

    /// <summary>Per-class precision, recall, F1 and support, in class order.</summary>
    public IReadOnlyList<ClassMetrics> PerClass { get; }

    /// <summary>The <paramref name="count"/> items with the highest loss, highest first.</summary>
    public IReadOnlyList<TopLoss> TopLosses(int count = 9) => _byLoss.Take(count).ToList();

    /// <summary>Builds the report from class probabilities (one row per item) and true labels.</summary>
    public static ClassificationReport Compute(IReadOnlyList<float[]> probabilities, IReadOnlyList<int> labels, IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classes);
        if (probabilities.Count != labels.Count)
            throw new ArgumentException($"{probabilities.Count} rows of probabilities for {labels.Count} labels.", nameof(labels));
        int c = classes.Count;
        var confusion = new int[c, c];
        var losses = new List<TopLoss>(labels.Count);
        double sum = 0;
        for (int i = 0; i < labels.Count; i++)
        {
            var p = probabilities[i];
            if (p.Length != c) throw new ArgumentException($"Row {i} has {p.Length} probabilities for {c} classes.", nameof(probabilities));
            int actual = labels[i];
            if ((uint)actual >= (uint)c) throw new ArgumentException($"Label {actual} of item {i} is not a class index.", nameof(labels));
            int predicted = 0;
            for (int k = 1; k < c; k++) if (p[k] > p[predicted]) predicted = k;
            confusion[actual, predicted]++;
            double loss = -Math.Log(Math.Max(p[actual], 1e-12));
            sum += loss;
            losses.Add(new TopLoss(i, loss, predicted, actual, p[predicted]));
        }
        var ordered = losses.OrderByDescending(l => l.Loss).ThenBy(l => l.Index).ToList();
        return new ClassificationReport(classes, confusion, labels.Count == 0 ? double.NaN : sum / labels.Count, ordered);
    }
}
