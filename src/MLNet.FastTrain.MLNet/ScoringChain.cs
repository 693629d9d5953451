using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx;

namespace MLNet.FastTrain.MLNet;

/// <summary>What went into a fitted model, kept in this process so that TTA can be added to it later.</summary>
internal sealed record FittedClassifier(IReadOnlyList<TrainedModel> Members, ImageInput Input, ITransformer? Preprocessing,
    string ScoreColumn, string PredictedLabelColumn, IReadOnlyList<string> Classes);

/// <summary>
/// Builds a fitted model out of ML.NET's own savable transformers: the preprocessing, <c>ApplyOnnxModel</c> with our
/// graph (Score and a class index), the index mapped to the class name and on to the label's key type
/// (PredictedLabel), and the temporary columns dropped.
/// </summary>
internal static class ScoringChain
{
    internal const string IndexColumn = "FastTrainIndex";
    internal const string ClassNameColumn = "FastTrainClassName";

    private static readonly ConditionalWeakTable<ITransformer, FittedClassifier> Fitted = new();

    /// <summary>What a chain built here was made from, or null for any other transformer.</summary>
    public static FittedClassifier? Find(ITransformer transformer) => Fitted.TryGetValue(transformer, out var info) ? info : null;

    public static TransformerChain<ITransformer> Build(MLContext ml, IDataView input, FittedClassifier fitted, bool tta, double beta)
    {
        var bytes = ScoringGraph.ToBytes(fitted.Members, new ScoringGraphOptions
        {
            InputName = fitted.Input.GraphInput,
            InputScale = fitted.Input.PixelScale,
            ScoreName = fitted.ScoreColumn,
            IndexName = IndexColumn,
            TestTimeAugmentation = tta,
            Beta = beta,
        });
        var names = ml.Data.LoadFromEnumerable(fitted.Classes.Select(c => new ClassName { Name = c }));
        var pairs = fitted.Classes.Select((c, i) => new KeyValuePair<uint, string>((uint)i, c));
        // ML.NET 5.0.1's ApplyOnnxModel fails on rank-0 outputs (its getter throws ArgumentNullException), so the
        // graph's own argmax is not read: a mapping of ours takes it from the Score vector.
        var scoring = ml.Transforms.ApplyOnnxModel([fitted.ScoreColumn], [fitted.Input.GraphInput], new MemoryStream(bytes))
            .Append(ml.Transforms.CopyColumns(ArgMaxMapping.InputColumn, fitted.ScoreColumn))
            .Append(ml.Transforms.CustomMapping(new ArgMaxMapping().GetMapping(), ArgMaxMapping.ContractName))
            .Append(ml.Transforms.Conversion.MapValue(ClassNameColumn, pairs, ArgMaxMapping.OutputColumn))
            .Append(ml.Transforms.Conversion.MapValueToKey(fitted.PredictedLabelColumn, ClassNameColumn, keyData: names))
            .Append(ml.Transforms.DropColumns([.. fitted.Input.TemporaryColumns, ArgMaxMapping.InputColumn, ArgMaxMapping.OutputColumn, ClassNameColumn]));
        var prepared = fitted.Preprocessing?.Transform(input) ?? input;
        var tail = scoring.Fit(prepared);
        var parts = new List<ITransformer>();
        if (fitted.Preprocessing is IEnumerable<ITransformer> pre) parts.AddRange(pre);
        else if (fitted.Preprocessing is not null) parts.Add(fitted.Preprocessing);
        parts.AddRange(tail);
        var chain = new TransformerChain<ITransformer>([.. parts]);
        Fitted.AddOrUpdate(chain, fitted);
        return chain;
    }

    /// <summary>One class name: the key data of PredictedLabel's key type.</summary>
    public sealed class ClassName
    {
        public string Name { get; set; } = "";
    }
}
