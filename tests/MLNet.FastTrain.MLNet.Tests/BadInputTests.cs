using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;

namespace MLNet.FastTrain.MLNet.Tests;

/// <summary>Every bad input fails before training with an error that names the column and what was expected.</summary>
public sealed class BadInputTests(PipelineFixture fixture) : IClassFixture<PipelineFixture>
{
    private readonly PipelineFixture _f = fixture;

    private IDataView Front(IDataView data) => _f.Folder.Front(_f.Ml).Fit(data).Transform(data);

    private SgdrEstimator Trainer(Action<SgdrEstimator.Options>? change = null)
    {
        var options = PipelineFixture.QuickOptions();
        options.Cycles = 1;
        change?.Invoke(options);
        return _f.Ml.MulticlassClassification.Trainers.Sgdr(options);
    }

    [Fact]
    public void An_unknown_backend_is_refused_and_the_torch_engine_without_its_package_names_it()
    {
        var e = Assert.Throws<ArgumentException>(() => Trainer(o => o.Backend = "tensorflow"));
        Assert.Contains("tensorflow", e.Message, StringComparison.Ordinal);
        // This test project references no torch engine: asking for it says which packages to add.
        var missing = Assert.Throws<InvalidOperationException>(() => Trainer(o => o.Backend = "torch").Fit(Front(_f.TrainData)));
        Assert.Contains("MLNet.FastTrain.TorchSharp", missing.Message, StringComparison.Ordinal);
        Assert.Contains("TorchSharp-cpu", missing.Message, StringComparison.Ordinal);
        var gpu = Assert.Throws<ArgumentException>(() => Trainer(o => (o.Backend, o.Device) = ("managed", "cuda:0")).Fit(Front(_f.TrainData)));
        Assert.Contains("CPU only", gpu.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MLContext_GpuDeviceId_asks_for_a_gpu_and_FallbackToCpu_decides_what_happens_without_one()
    {
        var options = PipelineFixture.QuickOptions();
        options.Cycles = 1;
        var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
        var e = Assert.Throws<InvalidOperationException>(() => strict.MulticlassClassification.Trainers.Sgdr(options).Fit(Front(_f.TrainData)));
        Assert.Contains("MLNet.FastTrain.TorchSharp", e.Message, StringComparison.Ordinal);

        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var messages = new List<string>();
        lenient.Log += (_, m) => messages.Add(m.Message);
        var trainer = lenient.MulticlassClassification.Trainers.Sgdr(options);
        trainer.Fit(Front(_f.TrainData));
        Assert.Equal("managed", trainer.Learner!.Engine.Name);
        Assert.Contains(messages, m => m.Contains("fell back to the CPU", StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_feature_column_is_named()
    {
        var e = Assert.Throws<SchemaMismatchException>(() => Trainer(o => o.FeatureColumnName = "Pixels").Fit(Front(_f.TrainData)));
        Assert.Equal("Pixels", e.ColumnName);
        Assert.Contains("LoadRawImageBytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_label_that_is_not_a_key_says_MapValueToKey_is_the_fix()
    {
        var data = _f.Ml.Transforms.LoadRawImageBytes("Image", _f.Folder.Directory, "ImagePath").Fit(_f.TrainData).Transform(_f.TrainData);
        var e = Assert.Throws<SchemaMismatchException>(() => Trainer().GetOutputSchema(SchemaShapes.Of(data.Schema)));
        Assert.Equal("Label", e.ColumnName);
        Assert.Contains("MapValueToKey", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_feature_column_of_text_is_refused_with_a_hint_to_load_the_images()
    {
        var data = _f.Ml.Transforms.Conversion.MapValueToKey("Label").Fit(_f.TrainData).Transform(_f.TrainData);
        var e = Assert.Throws<SchemaMismatchException>(() => Trainer(o => o.FeatureColumnName = "ImagePath").Fit(data));
        Assert.Contains("expected raw image bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("file paths", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_data_view_is_refused()
    {
        var empty = _f.Ml.Data.LoadFromEnumerable(Array.Empty<ImageRow>());
        var keyed = _f.Ml.Transforms.Conversion.MapValueToKey("Label").Fit(_f.TrainData);
        var data = _f.Ml.Transforms.LoadRawImageBytes("Image", _f.Folder.Directory, "ImagePath").Fit(empty).Transform(keyed.Transform(empty));
        Assert.Throws<TrainingDataException>(() => Trainer().Fit(data));
    }

    [Fact]
    public void One_class_only_is_refused()
    {
        var rows = _f.Folder.Train.Where(r => r.Label == ImageFolder.Names[0]).ToList();
        var e = Assert.Throws<TrainingDataException>(() => Trainer().Fit(Front(_f.Ml.Data.LoadFromEnumerable(rows))));
        Assert.Contains("at least two", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_undecodable_image_names_its_row_and_path_and_SkipInvalid_lists_it()
    {
        File.WriteAllBytes(Path.Combine(_f.Folder.Directory, "broken.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        var rows = _f.Folder.Train.Take(60).Append(new ImageRow { ImagePath = "broken.png", Label = ImageFolder.Names[1] }).ToList();
        var data = Front(_f.Ml.Data.LoadFromEnumerable(rows));
        var e = Assert.Throws<InvalidImageException>(() => Trainer().Fit(data));
        Assert.Equal(60, e.Row);
        Assert.Equal("broken.png", e.Path);
        Assert.Contains("SkipInvalid", e.Message, StringComparison.Ordinal);

        var skipping = Trainer(o => o.SkipInvalid = true);
        skipping.Fit(data);
        Assert.Single(skipping.SkippedRows);
        Assert.Contains("broken.png", skipping.SkippedRows[0], StringComparison.Ordinal);
    }

    [Fact]
    public void A_validation_set_with_other_classes_is_refused()
    {
        var train = Front(_f.TrainData);
        var fewer = _f.Folder.Test.Where(r => r.Label != ImageFolder.Names[9]).ToList();
        var validData = _f.Ml.Data.LoadFromEnumerable(fewer);
        var valid = _f.Folder.Front(_f.Ml).Fit(validData).Transform(validData);
        var e = Assert.Throws<TrainingDataException>(() => Trainer().Fit(train, valid));
        Assert.Contains("other classes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_out_of_range_fail_when_the_trainer_is_made()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Trainer(o => o.CycleMult = 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Trainer(o => o.LearningRate = -1));
        Assert.Throws<ArgumentException>(() => Trainer(o => o.Architecture = "vgg"));
        Assert.Throws<FileNotFoundException>(() => _f.Ml.MulticlassClassification.Trainers.DifferentialFineTune("no-such-backbone.onnx", featureColumnName: "Image"));
    }

    [Fact]
    public void A_damaged_model_zip_does_not_load()
    {
        string path = Path.Combine(_f.Folder.Directory, "damaged.zip");
        _f.Ml.Model.Save(_f.Model, _f.TrainData.Schema, path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(path, out _));
    }
}
