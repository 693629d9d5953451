namespace MLNet.FastTrain.Onnx.Proto;

// The subset of the ONNX protobuf schema (onnx.proto3) this project reads and writes. Field numbers are given
// beside each member in OnnxSerializer; everything else in a file is skipped on read.

/// <summary>ONNX <c>TensorProto.DataType</c> values used here.</summary>
public enum OnnxDataType
{
    /// <summary>Not set.</summary>
    Undefined = 0,

    /// <summary>32-bit IEEE float.</summary>
    Float = 1,

    /// <summary>32-bit signed integer.</summary>
    Int32 = 6,

    /// <summary>64-bit signed integer.</summary>
    Int64 = 7,

    /// <summary>64-bit IEEE float.</summary>
    Double = 11,
}

/// <summary>ONNX <c>AttributeProto.AttributeType</c> values used here.</summary>
public enum OnnxAttributeType
{
    /// <summary>Not set.</summary>
    Undefined = 0,

    /// <summary>One float (<c>f</c>).</summary>
    Float = 1,

    /// <summary>One integer (<c>i</c>).</summary>
    Int = 2,

    /// <summary>One string (<c>s</c>).</summary>
    String = 3,

    /// <summary>One tensor (<c>t</c>).</summary>
    Tensor = 4,

    /// <summary>A subgraph (<c>g</c>).</summary>
    Graph = 5,

    /// <summary>Floats (<c>floats</c>).</summary>
    Floats = 6,

    /// <summary>Integers (<c>ints</c>).</summary>
    Ints = 7,

    /// <summary>Strings (<c>strings</c>).</summary>
    Strings = 8,
}

/// <summary>A model file: IR version, operator sets, producer, the graph and string metadata.</summary>
public sealed class OnnxModelProto
{
    /// <summary>The IR version (7 for opset 13).</summary>
    public long IrVersion { get; set; }

    /// <summary>Operator sets by domain ("" is the default ai.onnx domain).</summary>
    public Dictionary<string, long> OpsetImports { get; } = [];

    /// <summary>The producing tool.</summary>
    public string ProducerName { get; set; } = "";

    /// <summary>The producing tool's version.</summary>
    public string ProducerVersion { get; set; } = "";

    /// <summary>The model's graph.</summary>
    public OnnxGraphProto Graph { get; set; } = new();

    /// <summary>Named metadata strings, in file order.</summary>
    public List<KeyValuePair<string, string>> Metadata { get; } = [];
}

/// <summary>A graph: nodes in topological order, initializers (weights), inputs and outputs.</summary>
public sealed class OnnxGraphProto
{
    /// <summary>The graph's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Nodes, in topological order.</summary>
    public List<OnnxNodeProto> Nodes { get; } = [];

    /// <summary>Constant tensors (weights), by name.</summary>
    public List<OnnxTensorProto> Initializers { get; } = [];

    /// <summary>Graph inputs (initializers may also be listed here by older exporters).</summary>
    public List<OnnxValueInfo> Inputs { get; } = [];

    /// <summary>Graph outputs.</summary>
    public List<OnnxValueInfo> Outputs { get; } = [];
}

/// <summary>One operator application.</summary>
public sealed class OnnxNodeProto
{
    /// <summary>The node's name (may be empty).</summary>
    public string Name { get; set; } = "";

    /// <summary>The operator, e.g. "Conv".</summary>
    public string OpType { get; set; } = "";

    /// <summary>The operator's domain; empty for ai.onnx.</summary>
    public string Domain { get; set; } = "";

    /// <summary>Input value names; an empty name marks an omitted optional input.</summary>
    public List<string> Inputs { get; } = [];

    /// <summary>Output value names.</summary>
    public List<string> Outputs { get; } = [];

    /// <summary>Attributes, in file order.</summary>
    public List<OnnxAttributeProto> Attributes { get; } = [];

    /// <summary>A readable name for messages: the node's name, or its operator and first output.</summary>
    public string DisplayName => Name.Length > 0 ? Name : $"{OpType} -> {Outputs.FirstOrDefault()}";
}

/// <summary>A node attribute: a name and one value of the kind <see cref="Type"/> says.</summary>
public sealed class OnnxAttributeProto
{
    /// <summary>The attribute's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Which value field is set.</summary>
    public OnnxAttributeType Type { get; set; }

    /// <summary>The float value.</summary>
    public float F { get; set; }

    /// <summary>The integer value.</summary>
    public long I { get; set; }

    /// <summary>The string value (UTF-8 bytes as text).</summary>
    public string S { get; set; } = "";

    /// <summary>The tensor value.</summary>
    public OnnxTensorProto? T { get; set; }

    /// <summary>The float list.</summary>
    public List<float> Floats { get; } = [];

    /// <summary>The integer list.</summary>
    public List<long> Ints { get; } = [];

    /// <summary>Creates an integer attribute.</summary>
    public static OnnxAttributeProto Int(string name, long value) => new() { Name = name, Type = OnnxAttributeType.Int, I = value };

    /// <summary>Creates a float attribute.</summary>
    public static OnnxAttributeProto Float(string name, float value) => new() { Name = name, Type = OnnxAttributeType.Float, F = value };

    /// <summary>A string attribute.</summary>
    public static OnnxAttributeProto String(string name, string value) => new() { Name = name, Type = OnnxAttributeType.String, S = value };

    /// <summary>Creates an integer-list attribute.</summary>
    public static OnnxAttributeProto IntList(string name, params long[] values)
    {
        var a = new OnnxAttributeProto { Name = name, Type = OnnxAttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }
}

/// <summary>A tensor: name, element type, dimensions and data (float32 or int64 here).</summary>
public sealed class OnnxTensorProto
{
    /// <summary>The tensor's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>The element type.</summary>
    public OnnxDataType DataType { get; set; }

    /// <summary>The dimensions.</summary>
    public long[] Dims { get; set; } = [];

    /// <summary>Elements of a float (or double, converted) tensor.</summary>
    public float[] FloatData { get; set; } = [];

    /// <summary>Elements of an integer tensor.</summary>
    public long[] Int64Data { get; set; } = [];

    /// <summary>The element count the dimensions give.</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);
}

/// <summary>A named graph input or output with its element type and shape (null dims are symbolic).</summary>
public sealed class OnnxValueInfo
{
    /// <summary>The value's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>The element type.</summary>
    public OnnxDataType ElementType { get; set; }

    /// <summary>Dimensions: a size, or null for a symbolic one.</summary>
    public List<long?> Dims { get; } = [];

    /// <summary>Names of symbolic dimensions (null for fixed ones), parallel to <see cref="Dims"/>.</summary>
    public List<string?> DimNames { get; } = [];
}
