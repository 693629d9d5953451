using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.FastTrain.MLNet;

/// <summary>The label column's key type and class names, in key order.</summary>
internal sealed record LabelInfo(KeyDataViewType Type, IReadOnlyList<string> Classes)
{
    /// <summary>ML.NET's annotation kind for a key type's values.</summary>
    public const string KeyValuesKind = "KeyValues";

    /// <summary>Checks the label column of a schema shape: present, a scalar key.</summary>
    public static SchemaShape.Column Check(SchemaShape schema, string column)
    {
        if (SchemaShapes.Find(schema, column) is not { } col)
            throw new SchemaMismatchException(column, $"The label column '{column}' is not in the data; set LabelColumnName, or map the label with MapValueToKey(\"{column}\").");
        if (col.Kind != SchemaShape.Column.VectorKind.Scalar || !col.IsKey)
            throw new SchemaMismatchException(column,
                $"Schema mismatch for label column '{column}': expected a key type, got {col.ItemType}{(col.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : " vector")}. Add MapValueToKey(\"{column}\") before the trainer.");
        return col;
    }

    /// <summary>The key type and names of a data view's label column.</summary>
    public static LabelInfo From(DataViewSchema schema, string column)
    {
        Check(SchemaShapes.Of(schema), column);
        var col = schema[column];
        var type = (KeyDataViewType)col.Type;
        if (type.Count > 100_000) throw new SchemaMismatchException(column, $"The label column '{column}' is a key of {type.Count} values; an image classifier takes at most 100,000 classes.");
        int count = (int)type.Count;
        var names = new string[count];
        if (col.Annotations.Schema.GetColumnOrNull(KeyValuesKind) is { } kv && kv.Type is VectorDataViewType vt && vt.Size == count)
        {
            var values = ReadNames(col.Annotations, kv);
            for (int i = 0; i < count; i++) names[i] = values[i];
        }
        else
        {
            for (int i = 0; i < count; i++) names[i] = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return new LabelInfo(type, names);
    }

    private static string[] ReadNames(DataViewSchema.Annotations annotations, DataViewSchema.Column kv)
    {
        if (((VectorDataViewType)kv.Type).ItemType is TextDataViewType)
        {
            VBuffer<ReadOnlyMemory<char>> text = default;
            annotations.GetValue(KeyValuesKind, ref text);
            return text.DenseValues().Select(v => v.ToString()).ToArray();
        }
        // Keys over numbers or other values: their text form names the class.
        var method = typeof(LabelInfo).GetMethod(nameof(ReadAny), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(((VectorDataViewType)kv.Type).ItemType.RawType);
        return (string[])method.Invoke(null, [annotations])!;
    }

    private static string[] ReadAny<T>(DataViewSchema.Annotations annotations)
    {
        VBuffer<T> values = default;
        annotations.GetValue(KeyValuesKind, ref values);
        return values.DenseValues().Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "").ToArray();
    }
}
