using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.FastTrain.MLNet.Tests;

/// <summary>One SGDR pipeline fitted once on the image folder, shared by the tests that only read it.</summary>
public sealed class PipelineFixture : IDisposable
{
    public PipelineFixture()
    {
        Folder = new ImageFolder();
        Ml = new MLContext(seed: 1);
        Ml.Log += (_, e) => { if (e.Source.StartsWith("MLNet.FastTrain", StringComparison.Ordinal)) Messages.Add(e.Message); };
        TrainData = Ml.Data.LoadFromEnumerable(Folder.Train);
        TestData = Ml.Data.LoadFromEnumerable(Folder.Test);
        Trainer = Ml.MulticlassClassification.Trainers.Sgdr(QuickOptions());
        Model = Folder.Front(Ml).Append(Trainer).Append(Ml.Transforms.Conversion.MapKeyToValue("PredictedLabel")).Fit(TrainData);
    }

    /// <summary>Settings that train in seconds: a given rate, two short cycles.</summary>
    public static SgdrEstimator.Options QuickOptions() => new()
    {
        FeatureColumnName = "Image", LearningRate = 3e-3, Cycles = 2, CycleLength = 1, CycleMult = 2, EarlyStoppingPatience = null,
    };

    public ImageFolder Folder { get; }

    public MLContext Ml { get; }

    public List<string> Messages { get; } = [];

    public IDataView TrainData { get; }

    public IDataView TestData { get; }

    public SgdrEstimator Trainer { get; }

    public TransformerChain<Microsoft.ML.Transforms.KeyToValueMappingTransformer> Model { get; }

    public void Dispose() => Folder.Dispose();
}
