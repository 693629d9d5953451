using MLNet.FastTrain.Metrics;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain;

/// <summary>One scored row: the predicted class name and the probability of every class, in class order.</summary>
public sealed record ClassificationRow(string PredictedLabel, float[] Score)
{
    /// <summary>The row for a score vector: the label of the highest score (the first on ties).</summary>
    public static ClassificationRow FromScore(float[] score, IReadOnlyList<string> classes)
    {
        ArgumentNullException.ThrowIfNull(score);
        ArgumentNullException.ThrowIfNull(classes);
        int best = 0;
        for (int k = 1; k < score.Length; k++) if (score[k] > score[best]) best = k;
        return new ClassificationRow(classes[best], score);
    }
}

/// <summary>
/// A trained image classifier (ML.NET's transformer): <see cref="Transform(ImageDataset)"/> scores a dataset, <see cref="Predict"/>
/// one image. A snapshot ensemble averages the probabilities of its members.
/// </summary>
public sealed class ClassifierTransformer
{
    private readonly IReadOnlyList<TrainedModel> _members;

    /// <summary>Wraps one trained model.</summary>
    public ClassifierTransformer(TrainedModel model) => _members = [model ?? throw new ArgumentNullException(nameof(model))];

    /// <summary>Wraps an ensemble whose members share classes and input size.</summary>
    public ClassifierTransformer(IReadOnlyList<TrainedModel> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0) throw new ArgumentException("An ensemble needs at least one model.", nameof(members));
        if (members.Any(m => !m.Classes.SequenceEqual(members[0].Classes)))
            throw new ArgumentException("Ensemble members must have the same classes in the same order.", nameof(members));
        _members = members;
    }

    /// <summary>Class names, in score order.</summary>
    public IReadOnlyList<string> Classes => _members[0].Classes;

    /// <summary>How many networks are averaged (1 unless a snapshot ensemble).</summary>
    public int EnsembleSize => _members.Count;

    /// <summary>The (first) underlying model.</summary>
    public TrainedModel Model => _members[0];

    /// <summary>Scores every image of a dataset.</summary>
    public IReadOnlyList<ClassificationRow> Transform(ImageDataset data) => Transform(data, null, 0, 0);

    /// <summary>Scores with a batch transform on the normalised images (one test-time-augmentation pass).</summary>
    internal IReadOnlyList<ClassificationRow> Transform(ImageDataset data, Vision.Transforms.BatchTransform? transform, ulong seed, int pass)
    {
        ArgumentNullException.ThrowIfNull(data);
        var sums = _members[0].Predict(data, transform, seed, pass).Select(p => p.Score.ToArray()).ToList();
        foreach (var member in _members.Skip(1))
        {
            var more = member.Predict(data, transform, seed, pass);
            for (int i = 0; i < sums.Count; i++)
                for (int k = 0; k < sums[i].Length; k++) sums[i][k] += more[i].Score[k];
        }
        return sums.Select(s =>
        {
            for (int k = 0; k < s.Length; k++) s[k] /= _members.Count;
            return ClassificationRow.FromScore(s, Classes);
        }).ToList();
    }

    /// <summary>Scores one image given as 8-bit pixels [channels, height, width] of the model's input size.</summary>
    public ClassificationRow Predict(byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        var (c, h, w) = Model.InputSize;
        if (pixels.Length != c * h * w)
            throw new ArgumentException($"The model takes {c}×{h}×{w} = {c * h * w} pixels; {pixels.Length} were given.", nameof(pixels));
        return Transform(new ImageDataset(pixels, [0], c, h, w, Classes))[0];
    }

    /// <summary>Accuracy, cross-entropy, confusion matrix, per-class scores and top losses on a labelled dataset.</summary>
    public ClassificationReport Evaluate(ImageDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var rows = Transform(data);
        return ClassificationReport.Compute(rows.Select(r => r.Score).ToList(), data.Labels.ToArray(), Classes);
    }

    /// <summary>Writes the (first) model's file. Snapshot ensembles are saved as their final member.</summary>
    public void Save(string path) => Model.Save(path);
}
