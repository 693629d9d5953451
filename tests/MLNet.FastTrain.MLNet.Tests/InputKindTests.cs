using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;

namespace MLNet.FastTrain.MLNet.Tests;

/// <summary>The other feature-column kinds, ML.NET's own data operations, and the other trainers.</summary>
public sealed class InputKindTests(PipelineFixture fixture) : IClassFixture<PipelineFixture>
{
    private readonly PipelineFixture _f = fixture;

    private static SgdrEstimator.Options Options(string feature)
    {
        var o = PipelineFixture.QuickOptions();
        o.FeatureColumnName = feature;
        return o;
    }

    [Fact]
    public void Images_loaded_with_LoadImages_and_resized_train_and_round_trip_with_nothing_of_ours_but_the_argmax()
    {
        var ml = _f.Ml;
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Img", _f.Folder.Directory, "ImagePath"))
            .Append(ml.MulticlassClassification.Trainers.Sgdr(Options("Img")));
        var model = pipeline.Fit(_f.TrainData);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(_f.TestData));
        Assert.True(metrics.MacroAccuracy > 0.45, $"macro accuracy {metrics.MacroAccuracy}");
        string path = Path.Combine(_f.Folder.Directory, "images.zip");
        ml.Model.Save(model, _f.TrainData.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        Assert.Equal(model.Transform(_f.TestData).GetColumn<float[]>("Score").First(), loaded.Transform(_f.TestData).GetColumn<float[]>("Score").First());
    }

    [Fact]
    public void Pixel_vectors_from_ExtractPixels_in_0_to_255_train_with_their_scale_folded_into_the_graph()
    {
        var ml = _f.Ml;
        var front = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Img", _f.Folder.Directory, "ImagePath"))
            .Append(ml.Transforms.ResizeImages("Small", 28, 28, "Img"))
            .Append(ml.Transforms.ConvertToGrayscale("Grey", "Small"))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Grey", Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.Red));
        var model = front.Append(ml.MulticlassClassification.Trainers.Sgdr(Options("Pixels"))).Fit(_f.TrainData);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(_f.TestData));
        Assert.True(metrics.MacroAccuracy > 0.45, $"macro accuracy {metrics.MacroAccuracy}");
        var fitted = model.OfType<TransformerChain<ITransformer>>().Select(ScoringChain.Find).First(x => x is not null)!;
        Assert.Equal(1f / 255, fitted.Input.PixelScale);
        Assert.Equal((1, 28, 28), (fitted.Input.Channels, fitted.Input.Height, fitted.Input.Width));
    }

    [Fact]
    public void TrainTestSplit_and_CrossValidate_work_with_the_trainer()
    {
        var ml = _f.Ml;
        var split = ml.Data.TrainTestSplit(_f.TrainData, testFraction: 0.25, seed: 3);
        var pipeline = _f.Folder.Front(ml).Append(ml.MulticlassClassification.Trainers.Sgdr(Options("Image")));
        var model = pipeline.Fit(split.TrainSet);
        Assert.True(ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet)).MacroAccuracy > 0.4);
        var folds = ml.MulticlassClassification.CrossValidate(_f.TrainData, pipeline, numberOfFolds: 2);
        Assert.Equal(2, folds.Count);
        Assert.All(folds, f => Assert.True(f.Metrics.MacroAccuracy > 0.25, $"fold macro accuracy {f.Metrics.MacroAccuracy}"));
    }

    [Fact]
    public void OneCycle_and_the_standalone_LR_finder_run_on_a_data_view()
    {
        var ml = _f.Ml;
        var front = _f.Folder.Front(ml).Fit(_f.TrainData);
        var data = front.Transform(_f.TrainData);
        var finder = ml.MulticlassClassification.Trainers.LrFinder(featureColumnName: "Image").Find(data);
        Assert.True(finder.Points.Count > 10);
        Assert.True(finder.Suggested is > 1e-6 and < 1, $"suggested {finder.Suggested}");
        Assert.StartsWith("<svg", finder.ToSvg(), StringComparison.Ordinal);

        var oneCycle = ml.MulticlassClassification.Trainers.OneCycle(new OneCycleEstimator.Options { FeatureColumnName = "Image", Epochs = 2 });
        var model = oneCycle.Fit(data);
        Assert.NotNull(oneCycle.LrFinderResult);
        // The test rows go through the key mapping fitted on the training rows, so that keys mean the same classes.
        double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(front.Transform(_f.TestData))).MacroAccuracy;
        Assert.True(accuracy > 0.4, $"macro accuracy {accuracy} at the LR finder's {oneCycle.LearningRate}");
    }

    [Fact]
    public void A_snapshot_ensemble_averages_its_members_inside_the_graph()
    {
        var o = Options("Image");
        o.SnapshotEnsemble = true;
        var trainer = _f.Ml.MulticlassClassification.Trainers.Sgdr(o);
        var front = _f.Folder.Front(_f.Ml).Fit(_f.TrainData);
        var model = trainer.Fit(front.Transform(_f.TrainData));
        var fitted = ScoringChain.Find(model)!;
        Assert.Equal(2, fitted.Members.Count);
        var test = front.Transform(_f.TestData);
        var scores = model.Transform(test).GetColumn<float[]>("Score").Take(3).ToList();
        var prepared = fitted.Preprocessing!.Transform(test).GetColumn<float[]>(ImageInput.PixelsColumn).Take(3).ToList();
        var bytes = prepared.SelectMany(p => p.Select(v => (byte)MathF.Round(v * 255))).ToArray();
        var images = new Vision.Datasets.ImageDataset(bytes, new int[3], 1, 28, 28, fitted.Classes);
        var a = fitted.Members[0].Predict(images);
        var b = fitted.Members[1].Predict(images);
        for (int i = 0; i < 3; i++) for (int c = 0; c < 10; c++) Assert.Equal((a[i].Score[c] + b[i].Score[c]) / 2, scores[i][c], 1e-5);
    }
}
