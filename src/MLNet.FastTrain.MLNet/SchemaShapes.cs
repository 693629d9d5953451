using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.FastTrain.MLNet;

/// <summary>
/// Schema shapes for an estimator outside ML.NET. <c>SchemaShape.Create(DataViewSchema)</c> and the constructor of
/// <c>SchemaShape.Column</c> are internal to ML.NET (its own estimators are friends), yet every
/// <c>GetOutputSchema</c> must return new columns; both are reached here by reflection, once.
/// </summary>
internal static class SchemaShapes
{
    private static readonly MethodInfo CreateMethod =
        typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(DataViewSchema)])
        ?? throw new NotSupportedException("SchemaShape.Create(DataViewSchema) is missing; this package was built against Microsoft.ML 5.0.1.");

    /// <summary>The shape of a schema.</summary>
    public static SchemaShape Of(DataViewSchema schema) => (SchemaShape)CreateMethod.Invoke(null, [schema])!;

    /// <summary>The last column of that name (later columns hide earlier ones), if any.</summary>
    public static SchemaShape.Column? Find(SchemaShape shape, string name)
    {
        for (int i = shape.Count - 1; i >= 0; i--)
        {
            if (shape[i].Name == name) return shape[i];
        }
        return null;
    }

    /// <summary>
    /// The input with a known-size Score vector and a PredictedLabel of the label's key type (replacing columns of
    /// those names). A shape keeps neither the vector's size nor the key's count, so any positive ones do here.
    /// </summary>
    public static SchemaShape AddClassifierOutputs(SchemaShape input, string score, string predictedLabel, KeyDataViewType key, bool keyValues)
    {
        int classes = (int)key.Count;
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(score, new VectorDataViewType(NumberDataViewType.Single, classes));
        var annotations = new DataViewSchema.Annotations.Builder();
        if (keyValues)
        {
            annotations.Add(LabelInfo.KeyValuesKind, new VectorDataViewType(TextDataViewType.Instance, classes),
                (ref VBuffer<ReadOnlyMemory<char>> v) => v = new VBuffer<ReadOnlyMemory<char>>(classes, new ReadOnlyMemory<char>[classes]));
        }
        builder.AddColumn(predictedLabel, key, annotations.ToAnnotations());
        var added = Of(builder.ToSchema());
        var names = new HashSet<string>(added.Select(c => c.Name));
        return new SchemaShape(input.Where(c => !names.Contains(c.Name)).Concat(added));
    }
}
