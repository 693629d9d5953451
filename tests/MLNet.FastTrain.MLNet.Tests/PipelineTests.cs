using Xunit;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.MLNet.Tests;

/// <summary>The trainers as ML.NET estimators: schema, fit, evaluation, save and load, composition.</summary>
public sealed class PipelineTests(PipelineFixture fixture) : IClassFixture<PipelineFixture>
{
    private readonly PipelineFixture _f = fixture;

    [Fact]
    public void GetOutputSchema_adds_a_known_size_score_and_a_predicted_label_of_the_labels_key_type()
    {
        var ml = _f.Ml;
        var front = _f.Folder.Front(ml).Fit(_f.TrainData);
        var shape = SchemaShapes.Of(front.Transform(_f.TrainData).Schema);
        var output = ml.MulticlassClassification.Trainers.Sgdr(PipelineFixture.QuickOptions()).GetOutputSchema(shape);
        var score = SchemaShapes.Find(output, "Score")!.Value;
        var predicted = SchemaShapes.Find(output, "PredictedLabel")!.Value;
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.Equal(NumberDataViewType.Single, score.ItemType);
        Assert.True(predicted.IsKey);
        Assert.Equal(typeof(uint), predicted.ItemType.RawType);
        Assert.NotNull(SchemaShapes.Find(predicted.Annotations, "KeyValues"));
    }

    [Fact]
    public void A_fitted_pipeline_is_evaluated_by_MLNets_evaluator_and_beats_chance_by_far()
    {
        var scored = _f.Model.Transform(_f.TestData);
        var schema = scored.Schema;
        Assert.Equal(10, ((VectorDataViewType)schema["Score"].Type).Size);
        Assert.Null(schema.GetColumnOrNull(ImageInput.PixelsColumn));
        var keyed = _f.Model.Take(_f.Model.Count() - 1).Aggregate(_f.TestData, (d, t) => t.Transform(d));
        var metrics = _f.Ml.MulticlassClassification.Evaluate(keyed);
        Assert.True(metrics.MacroAccuracy > 0.45, $"macro accuracy {metrics.MacroAccuracy}");
        Assert.True(metrics.LogLoss < 2.0, $"log loss {metrics.LogLoss}");
        Assert.Equal(10, metrics.ConfusionMatrix.NumberOfClasses);
        Assert.NotNull(_f.Trainer.LearningRate);
        Assert.Contains(_f.Messages, m => m.Contains("training and", StringComparison.Ordinal));
    }

    [Fact]
    public void Predicted_labels_are_the_names_back_and_scores_are_probabilities_in_key_order()
    {
        var engine = _f.Ml.Model.CreatePredictionEngine<ImageRow, Prediction>(_f.Model);
        int right = 0;
        foreach (var row in _f.Folder.Test)
        {
            var p = engine.Predict(row);
            Assert.Contains(p.PredictedLabel, ImageFolder.Names);
            Assert.Equal(10, p.Score.Length);
            Assert.InRange(p.Score.Sum(), 0.999f, 1.001f);
            if (p.PredictedLabel == row.Label) right++;
        }
        Assert.True(right > 45, $"{right} of {_f.Folder.Test.Count} right");
    }

    [Fact]
    public void The_graph_scores_as_the_managed_engine_does()
    {
        // The same pixels through ONNX Runtime (inside the fitted model) and through our engine.
        var fitted = _f.Model.Select(ScoringChain.Find).Concat(_f.Model.OfType<TransformerChain<ITransformer>>().Select(ScoringChain.Find)).First(x => x is not null)!;
        var front = _f.Folder.Front(_f.Ml).Fit(_f.TestData);
        var prepared = fitted.Preprocessing!.Transform(front.Transform(_f.TestData));
        var pixels = prepared.GetColumn<float[]>(ImageInput.PixelsColumn).Take(20).ToList();
        var scores = _f.Model.Transform(_f.TestData).GetColumn<float[]>("Score").Take(20).ToList();
        var bytes = pixels.SelectMany(p => p.Select(v => (byte)MathF.Round(v * 255))).ToArray();
        var data = new ImageDataset(bytes, new int[pixels.Count], 1, 28, 28, fitted.Classes);
        var ours = fitted.Members[0].Predict(data);
        for (int i = 0; i < pixels.Count; i++)
            for (int c = 0; c < 10; c++) Assert.Equal(ours[i].Score[c], scores[i][c], 1e-5);
    }

    [Fact]
    public void Save_and_load_give_the_same_schema_and_the_same_scores()
    {
        string path = Path.Combine(_f.Folder.Directory, "model.zip");
        _f.Ml.Model.Save(_f.Model, _f.TrainData.Schema, path);
        var other = new MLContext(seed: 7);
        var loaded = other.Model.Load(path, out var inputSchema);
        Assert.NotNull(inputSchema.GetColumnOrNull("ImagePath"));
        var before = _f.Model.Transform(_f.TestData);
        var after = loaded.Transform(other.Data.LoadFromEnumerable(_f.Folder.Test));
        Assert.Equal(before.Schema["Score"].Type, after.Schema["Score"].Type);
        Assert.Equal(before.Schema["PredictedLabel"].Type, after.Schema["PredictedLabel"].Type);
        var a = before.GetColumn<float[]>("Score").ToList();
        var b = after.GetColumn<float[]>("Score").ToList();
        for (int i = 0; i < a.Count; i++) Assert.Equal(a[i], b[i]);
        Assert.Equal(before.GetColumn<string>("PredictedLabel"), after.GetColumn<string>("PredictedLabel"));
        var engine = other.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
        Assert.Contains(engine.Predict(_f.Folder.Test[0]).PredictedLabel, ImageFolder.Names);
    }

    [Fact]
    public void TTA_scores_differ_from_plain_ones_and_survive_save_and_load()
    {
        var tta = _f.Ml.Transforms.TtaScore(_f.Model).Fit(_f.TestData);
        var plain = _f.Model.Transform(_f.TestData).GetColumn<float[]>("Score").ToList();
        var augmented = tta.Transform(_f.TestData).GetColumn<float[]>("Score").ToList();
        Assert.Contains(Enumerable.Range(0, plain.Count), i => MathF.Abs(plain[i][0] - augmented[i][0]) > 1e-4f);
        foreach (var s in augmented) Assert.InRange(s.Sum(), 0.999f, 1.001f);
        string path = Path.Combine(_f.Folder.Directory, "tta.zip");
        _f.Ml.Model.Save(tta, _f.TestData.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        var again = loaded.Transform(_f.TestData).GetColumn<float[]>("Score").ToList();
        for (int i = 0; i < again.Count; i++) Assert.Equal(augmented[i], again[i]);
        var loadedPlain = new MLContext().Model.Load(Path.Combine(_f.Folder.Directory, "tta.zip"), out _);
        Assert.Throws<ArgumentException>(() => _f.Ml.Transforms.TtaScore(loadedPlain));
    }

    [Fact]
    public void The_graph_TTA_is_the_beta_mix_of_plain_and_the_mean_of_four_augmented_copies()
    {
        var fitted = _f.Model.OfType<TransformerChain<ITransformer>>().Select(ScoringChain.Find).First(x => x is not null)!;
        var zero = _f.Ml.Transforms.TtaScore(_f.Model, beta: 1.0).Fit(_f.TestData).Transform(_f.TestData).GetColumn<float[]>("Score").Take(5).ToList();
        var plain = _f.Model.Transform(_f.TestData).GetColumn<float[]>("Score").Take(5).ToList();
        // β = 1 keeps only the plain image: the TTA graph then scores exactly as the plain one.
        for (int i = 0; i < 5; i++) for (int c = 0; c < 10; c++) Assert.Equal(plain[i][c], zero[i][c], 1e-6);
        Assert.Single(fitted.Members);
    }

    [Fact]
    public void Eight_threads_with_a_prediction_engine_each_and_eight_parallel_cursors_agree_with_one_thread()
    {
        const int Threads = 8;
        var rows = _f.Folder.Test;
        var expected = _f.Model.Transform(_f.TestData).GetColumn<float[]>("Score").ToList();
        var byPath = rows.Select((r, i) => (r.ImagePath, i)).ToDictionary(p => p.ImagePath, p => p.i);

        // One prediction engine per thread, as ML.NET requires, all on the same fitted model, started together.
        using var start = new Barrier(Threads);
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            var engine = _f.Ml.Model.CreatePredictionEngine<ImageRow, Prediction>(_f.Model);
            start.SignalAndWait();
            for (int k = 0; k < rows.Count; k++)
            {
                int i = (k + t * rows.Count / Threads) % rows.Count;
                var p = engine.Predict(rows[i]);
                if (!p.Score.SequenceEqual(expected[i])) failures.Add($"thread {t}, row {i}: the engine's score differs");
            }
        })).ToList();
        threads.ForEach(th => th.Start());
        threads.ForEach(th => th.Join());
        Assert.Empty(failures.Take(5));

        // Transform read through a cursor set: every row once, each with its single-thread score.
        var scored = _f.Model.Transform(_f.TestData);
        var columns = new[] { scored.Schema["ImagePath"], scored.Schema["Score"] };
        var cursors = scored.GetRowCursorSet(columns, Threads, new Random(1));
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, float[]>();
        Parallel.ForEach(cursors, new ParallelOptions { MaxDegreeOfParallelism = Threads }, cursor =>
        {
            using (cursor)
            {
                var path = cursor.GetGetter<ReadOnlyMemory<char>>(columns[0]);
                var score = cursor.GetGetter<VBuffer<float>>(columns[1]);
                ReadOnlyMemory<char> p = default;
                VBuffer<float> s = default;
                while (cursor.MoveNext())
                {
                    path(ref p);
                    score(ref s);
                    Assert.True(seen.TryAdd(p.ToString(), s.DenseValues().ToArray()), $"{p} came twice");
                }
            }
        });
        Assert.Equal(rows.Count, seen.Count);
        foreach (var (path, score) in seen) Assert.Equal(expected[byPath[path]], score);
    }
}
