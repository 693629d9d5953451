using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace MLNet.FastTrain.MLNet;

/// <summary>A copy of the Score vector.</summary>
public sealed class ScoreRow
{
    /// <summary>The class probabilities.</summary>
    [VectorType]
    public float[]? FastTrainScore { get; set; }
}

/// <summary>The most probable class.</summary>
public sealed class ClassIndexRow
{
    /// <summary>Its position in the Score vector, from 0.</summary>
    public uint FastTrainClassIndex { get; set; }
}

/// <summary>
/// The position of the largest score (the first, on ties), as a scalar that <c>MapValue</c> turns into the class
/// name. The graph computes the same argmax, but ML.NET 5.0.1 cannot read a rank-0 ONNX output, and no savable
/// ML.NET transform reduces a vector to a scalar.
/// </summary>
[CustomMappingFactoryAttribute(ContractName)]
public sealed class ArgMaxMapping : CustomMappingFactory<ScoreRow, ClassIndexRow>
{
    /// <summary>The contract name stored in saved models.</summary>
    public const string ContractName = "MLNet.FastTrain.ArgMax";

    internal const string InputColumn = nameof(ScoreRow.FastTrainScore);
    internal const string OutputColumn = nameof(ClassIndexRow.FastTrainClassIndex);

    /// <inheritdoc/>
    public override Action<ScoreRow, ClassIndexRow> GetMapping() => Map;

    internal static void Map(ScoreRow input, ClassIndexRow output)
    {
        var score = input.FastTrainScore ?? [];
        int best = 0;
        for (int i = 1; i < score.Length; i++)
        {
            if (score[i] > score[best]) best = i;
        }
        output.FastTrainClassIndex = (uint)best;
    }
}
