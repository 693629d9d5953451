using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Onnx;
using MLNet.FastTrain.Vision.Models;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.FastTrain.MLNet.Tests;

/// <summary>
/// ML.NET's ImageNet ResNet-18 (Microsoft.ML.DnnImageFeaturizer.ResNet18, a CNTK export) imported as a trainable
/// network, against ONNX Runtime running the package's own graph.
/// </summary>
public sealed class ImageNetBackboneTests(PipelineFixture fixture, ITestOutputHelper output) : IClassFixture<PipelineFixture>
{
    private readonly PipelineFixture _f = fixture;

    private static string PackageGraph => Path.Combine(PretrainedModels.LocateResNet18()!, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    public sealed class Pixels
    {
        [VectorType(3, 224, 224)]
        public float[] Input247 { get; set; } = [];
    }

    [Fact]
    public void The_backbone_is_found_in_the_output_folder_and_imports_as_its_zoo_layout()
    {
        Assert.NotNull(PretrainedModels.LocateResNet18());
        var imported = OnnxImporter.Load(PackageGraph);
        Assert.Equal("resnet18-imagenet", imported.Architecture);
        var names = imported.Network.NamedChildren().Select(kv => kv.Key).ToArray();
        Assert.Equal(["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten"], names);
        Assert.Equal(15_897_152, imported.Network.Parameters().Sum(p => (long)p.Length));
        Assert.Equal(3, imported.Network.NamedChildren().Single(kv => kv.Key == "layer4").Value.NamedChildren().Count());
    }

    [Fact]
    public void Its_features_with_the_preprocessing_folded_in_are_ONNX_Runtimes_on_the_package_graph()
    {
        var (body, (mean, std)) = PretrainedModels.LoadResNet18ImageNet();
        body.Eval();
        var x = Tensor.Uniform([2, 3, 224, 224], generator: new Generator(5));      // RGB in [0, 1]
        float[] ours;
        using (GradRecorder.NoGrad())
        {
            var normalised = Functional.Div(Functional.Sub(x, Tensor.FromArray(mean, 1, 3, 1, 1)), Tensor.FromArray(std, 1, 3, 1, 1));
            ours = body.Forward(normalised).ToArray();
        }
        // The package's own input: BGR, 0–255, minus the channel means (what the folded normalisation encodes).
        var pixels = x.ToArray();
        var rows = new List<Pixels>();
        int plane = 224 * 224;
        for (int n = 0; n < 2; n++)
        {
            var bgr = new float[3 * plane];
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < plane; i++)
                    bgr[(2 - c) * plane + i] = 255f * pixels[(n * 3 + c) * plane + i] - mean[c] * 255f;
            rows.Add(new Pixels { Input247 = bgr });
        }
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(rows);
        var scored = ml.Transforms.ApplyOnnxModel(["Pooling395_Output_0"], ["Input247"], PackageGraph).Fit(data).Transform(data);
        var theirs = scored.GetColumn<float[]>("Pooling395_Output_0").SelectMany(v => v).ToArray();
        Assert.Equal(theirs.Length, ours.Length);
        double worst = 0, scale = theirs.Max(Math.Abs);
        for (int i = 0; i < ours.Length; i++) worst = Math.Max(worst, Math.Abs(ours[i] - theirs[i]));
        output.WriteLine($"largest difference {worst:E2} on features up to {scale:F3}");
        Assert.True(worst <= 1e-4 * Math.Max(1, scale), $"largest difference {worst}");
    }

    [Fact]
    public void A_missing_package_is_named_and_images_below_the_minimum_size_are_refused_with_it()
    {
        var e = Assert.Throws<FileNotFoundException>(() => PretrainedModels.LoadResNet18ImageNet([Path.GetTempPath()]));
        Assert.Contains("Microsoft.ML.DnnImageFeaturizer.ResNet18", e.Message, StringComparison.Ordinal);
        int minimum = ModelZoo.MinimumInputSize(ModelZoo.ResNet18ImageNet());
        output.WriteLine($"minimum input {minimum}");
        Assert.InRange(minimum, 17, 40);
        var small = Assert.Throws<ArgumentException>(() => PretrainedModels.LoadForFineTuning("resnet18-imagenet", 1, ImageFolder.Names, 1, (28, 28)));
        Assert.Contains($"at least {minimum}", small.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => PretrainedModels.LoadForFineTuning("resnet18-imagenet", 1, ["only"], 1, (64, 64)));
        // 48: floor(48 / 4) = 12 is no multiple of 8, so layer4's shortcut and main path differ; 32 and 64 work.
        var uneven = Assert.Throws<ArgumentException>(() => PretrainedModels.LoadForFineTuning("resnet18-imagenet", 1, ImageFolder.Names, 1, (48, 48)));
        Assert.Contains("35 × 35 or 64 × 64", uneven.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_recipe_fine_tunes_it_in_a_pipeline_and_the_saved_model_scores_as_the_engine_does()
    {
        var ml = _f.Ml;
        var trainer = ml.MulticlassClassification.Trainers.DifferentialFineTune(new DifferentialFineTuneEstimator.Options
        {
            Backbone = "resnet18-imagenet", FeatureColumnName = "Image", ImageSize = 64, HeadLearningRate = 3e-3, LearningRate = 1e-3,
            PrecomputedEpochs = 1, AugmentedHeadCycles = 1, Cycles = 1,
        });
        var front = _f.Folder.Front(ml).Fit(_f.TrainData);
        var model = trainer.Fit(front.Transform(_f.TrainData));
        Assert.Contains(trainer.Stages, s => s.Name.Contains("precomputed", StringComparison.OrdinalIgnoreCase));
        var test = front.Transform(_f.TestData);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        output.WriteLine($"macro accuracy {metrics.MacroAccuracy:P1}; stages: {string.Join("; ", trainer.Stages.Select(s => $"{s.Name} {s.Accuracy:P1}"))}");
        Assert.True(metrics.MacroAccuracy > 0.5, $"macro accuracy {metrics.MacroAccuracy}");

        // The exported graph (asymmetric pads and all) in ONNX Runtime against our engine on the same pixels.
        var fitted = ScoringChain.Find(model)!;
        var prepared = fitted.Preprocessing!.Transform(test).GetColumn<float[]>(ImageInput.PixelsColumn).Take(8).ToList();
        var bytes = prepared.SelectMany(p => p.Select(v => (byte)MathF.Round(v * 255))).ToArray();
        var images = new Vision.Datasets.ImageDataset(bytes, new int[8], 1, 64, 64, fitted.Classes);
        var engine = fitted.Members[0].Predict(images);
        var onnx = model.Transform(test).GetColumn<float[]>("Score").Take(8).ToList();
        for (int i = 0; i < 8; i++) for (int c = 0; c < 10; c++) Assert.Equal(engine[i].Score[c], onnx[i][c], 1e-4);
    }
}
