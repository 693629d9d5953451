using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Google.Protobuf;

namespace MLNet.FastTrain.Onnx.Proto;

/// <summary>
/// Reads and writes ONNX model files with Google.Protobuf's coded streams, by the field numbers of the ONNX
/// specification (onnx.proto3). Unknown fields are skipped on read, so newer files load when the parts used here
/// are unchanged.
/// </summary>
public static class OnnxSerializer
{
    // ModelProto
    private const int ModelIrVersion = 1, ModelProducerName = 2, ModelProducerVersion = 3, ModelGraph = 7, ModelOpsetImport = 8, ModelMetadataProps = 14;

    // OperatorSetIdProto, StringStringEntryProto
    private const int OpsetDomain = 1, OpsetVersion = 2, EntryKey = 1, EntryValue = 2;

    // GraphProto
    private const int GraphNode = 1, GraphName = 2, GraphInitializer = 5, GraphInput = 11, GraphOutput = 12;

    // NodeProto
    private const int NodeInput = 1, NodeOutput = 2, NodeName = 3, NodeOpType = 4, NodeAttribute = 5, NodeDomain = 7;

    // AttributeProto
    private const int AttrName = 1, AttrF = 2, AttrI = 3, AttrS = 4, AttrT = 5, AttrFloats = 7, AttrInts = 8, AttrType = 20;

    // TensorProto
    private const int TensorDims = 1, TensorDataType = 2, TensorFloatData = 4, TensorInt32Data = 5, TensorInt64Data = 7,
        TensorName = 8, TensorRawData = 9, TensorDoubleData = 10, TensorDataLocation = 14;

    // ValueInfoProto, TypeProto, TypeProto.Tensor, TensorShapeProto, TensorShapeProto.Dimension
    private const int ValueInfoName = 1, ValueInfoType = 2, TypeTensorType = 1, TensorTypeElemType = 1, TensorTypeShape = 2,
        ShapeDim = 1, DimValue = 1, DimParam = 2;

    /// <summary>Serialises a model.</summary>
    public static byte[] Write(OnnxModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Message(o =>
        {
            Int64(o, ModelIrVersion, model.IrVersion);
            String(o, ModelProducerName, model.ProducerName);
            String(o, ModelProducerVersion, model.ProducerVersion);
            Nested(o, ModelGraph, g => WriteGraph(g, model.Graph));
            foreach (var (domain, version) in model.OpsetImports)
                Nested(o, ModelOpsetImport, s => { String(s, OpsetDomain, domain); Int64(s, OpsetVersion, version); });
            foreach (var (key, value) in model.Metadata)
                Nested(o, ModelMetadataProps, s => { String(s, EntryKey, key); String(s, EntryValue, value); });
        });
    }

    /// <summary>Parses a model.</summary>
    /// <exception cref="InvalidProtocolBufferException">The bytes are not a well-formed protobuf message.</exception>
    public static OnnxModelProto Read(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var model = new OnnxModelProto();
        Fields(bytes, (field, input) =>
        {
            switch (field)
            {
                case ModelIrVersion: model.IrVersion = input.ReadInt64(); return true;
                case ModelProducerName: model.ProducerName = input.ReadString(); return true;
                case ModelProducerVersion: model.ProducerVersion = input.ReadString(); return true;
                case ModelGraph: model.Graph = ReadGraph(input.ReadBytes()); return true;
                case ModelOpsetImport:
                    {
                        string domain = ""; long version = 0;
                        Fields(input.ReadBytes(), (f, s) => f switch
                        {
                            OpsetDomain => Set(ref domain, s.ReadString()),
                            OpsetVersion => Set(ref version, s.ReadInt64()),
                            _ => false,
                        });
                        model.OpsetImports[domain == "ai.onnx" ? "" : domain] = version;
                        return true;
                    }
                case ModelMetadataProps:
                    {
                        string key = "", value = "";
                        Fields(input.ReadBytes(), (f, s) => f switch
                        {
                            EntryKey => Set(ref key, s.ReadString()),
                            EntryValue => Set(ref value, s.ReadString()),
                            _ => false,
                        });
                        model.Metadata.Add(new(key, value));
                        return true;
                    }
                default: return false;
            }
        });
        return model;
    }

    private static void WriteGraph(CodedOutputStream o, OnnxGraphProto graph)
    {
        foreach (var node in graph.Nodes) Nested(o, GraphNode, n => WriteNode(n, node));
        String(o, GraphName, graph.Name);
        foreach (var t in graph.Initializers) Nested(o, GraphInitializer, s => WriteTensor(s, t));
        foreach (var v in graph.Inputs) Nested(o, GraphInput, s => WriteValueInfo(s, v));
        foreach (var v in graph.Outputs) Nested(o, GraphOutput, s => WriteValueInfo(s, v));
    }

    private static OnnxGraphProto ReadGraph(ByteString bytes)
    {
        var graph = new OnnxGraphProto();
        Fields(bytes, (field, input) =>
        {
            switch (field)
            {
                case GraphNode: graph.Nodes.Add(ReadNode(input.ReadBytes())); return true;
                case GraphName: graph.Name = input.ReadString(); return true;
                case GraphInitializer: graph.Initializers.Add(ReadTensor(input.ReadBytes())); return true;
                case GraphInput: graph.Inputs.Add(ReadValueInfo(input.ReadBytes())); return true;
                case GraphOutput: graph.Outputs.Add(ReadValueInfo(input.ReadBytes())); return true;
                default: return false;
            }
        });
        return graph;
    }

    private static void WriteNode(CodedOutputStream o, OnnxNodeProto node)
    {
        foreach (var i in node.Inputs) { o.WriteTag(NodeInput, WireFormat.WireType.LengthDelimited); o.WriteString(i); }
        foreach (var i in node.Outputs) { o.WriteTag(NodeOutput, WireFormat.WireType.LengthDelimited); o.WriteString(i); }
        String(o, NodeName, node.Name);
        String(o, NodeOpType, node.OpType);
        foreach (var a in node.Attributes) Nested(o, NodeAttribute, s => WriteAttribute(s, a));
        String(o, NodeDomain, node.Domain);
    }

    private static OnnxNodeProto ReadNode(ByteString bytes)
    {
        var node = new OnnxNodeProto();
        Fields(bytes, (field, input) =>
        {
            switch (field)
            {
                case NodeInput: node.Inputs.Add(input.ReadString()); return true;
                case NodeOutput: node.Outputs.Add(input.ReadString()); return true;
                case NodeName: node.Name = input.ReadString(); return true;
                case NodeOpType: node.OpType = input.ReadString(); return true;
                case NodeAttribute: node.Attributes.Add(ReadAttribute(input.ReadBytes())); return true;
                case NodeDomain: node.Domain = input.ReadString(); return true;
                default: return false;
            }
        });
        return node;
    }

    private static void WriteAttribute(CodedOutputStream o, OnnxAttributeProto a)
    {
        String(o, AttrName, a.Name);
        switch (a.Type)
        {
            case OnnxAttributeType.Float: o.WriteTag(AttrF, WireFormat.WireType.Fixed32); o.WriteFloat(a.F); break;
            case OnnxAttributeType.Int: o.WriteTag(AttrI, WireFormat.WireType.Varint); o.WriteInt64(a.I); break;
            case OnnxAttributeType.String: o.WriteTag(AttrS, WireFormat.WireType.LengthDelimited); o.WriteBytes(ByteString.CopyFromUtf8(a.S)); break;
            case OnnxAttributeType.Tensor: Nested(o, AttrT, s => WriteTensor(s, a.T!)); break;
            case OnnxAttributeType.Floats:
                foreach (var f in a.Floats) { o.WriteTag(AttrFloats, WireFormat.WireType.Fixed32); o.WriteFloat(f); }
                break;
            case OnnxAttributeType.Ints:
                foreach (var i in a.Ints) { o.WriteTag(AttrInts, WireFormat.WireType.Varint); o.WriteInt64(i); }
                break;
            default: throw new ArgumentException($"Attribute '{a.Name}' has a type ({a.Type}) this writer does not produce.", nameof(a));
        }
        o.WriteTag(AttrType, WireFormat.WireType.Varint);
        o.WriteInt32((int)a.Type);
    }

    private static OnnxAttributeProto ReadAttribute(ByteString bytes)
    {
        var a = new OnnxAttributeProto();
        Fields(bytes, (field, input) =>
        {
            switch (field)
            {
                case AttrName: a.Name = input.ReadString(); return true;
                case AttrType: a.Type = (OnnxAttributeType)input.ReadInt32(); return true;
                case AttrF: a.F = input.ReadFloat(); return true;
                case AttrI: a.I = input.ReadInt64(); return true;
                case AttrS: a.S = input.ReadBytes().ToStringUtf8(); return true;
                case AttrT: a.T = ReadTensor(input.ReadBytes()); return true;
                case AttrFloats: ReadRepeated(input, a.Floats, s => s.ReadFloat()); return true;
                case AttrInts: ReadRepeated(input, a.Ints, s => s.ReadInt64()); return true;
                default: return false;
            }
        });
        return a;
    }

    private static void WriteTensor(CodedOutputStream o, OnnxTensorProto t)
    {
        foreach (var d in t.Dims) { o.WriteTag(TensorDims, WireFormat.WireType.Varint); o.WriteInt64(d); }
        o.WriteTag(TensorDataType, WireFormat.WireType.Varint);
        o.WriteInt32((int)t.DataType);
        String(o, TensorName, t.Name);
        byte[] raw;
        if (t.DataType == OnnxDataType.Float)
        {
            raw = new byte[t.FloatData.Length * 4];
            for (int i = 0; i < t.FloatData.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(4 * i), t.FloatData[i]);
        }
        else if (t.DataType == OnnxDataType.Int64)
        {
            raw = new byte[t.Int64Data.Length * 8];
            for (int i = 0; i < t.Int64Data.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(8 * i), t.Int64Data[i]);
        }
        else throw new ArgumentException($"Tensor '{t.Name}' has an element type ({t.DataType}) this writer does not produce.", nameof(t));
        o.WriteTag(TensorRawData, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(UnsafeByteOperations.UnsafeWrap(raw));
    }

    private static OnnxTensorProto ReadTensor(ByteString bytes)
    {
        var t = new OnnxTensorProto();
        var dims = new List<long>();
        var floats = new List<float>();
        var ints = new List<long>();
        var doubles = new List<double>();
        ByteString? raw = null;
        long location = 0;
        Fields(bytes, (field, input) =>
        {
            switch (field)
            {
                case TensorDims: ReadRepeated(input, dims, s => s.ReadInt64()); return true;
                case TensorDataType: t.DataType = (OnnxDataType)input.ReadInt32(); return true;
                case TensorName: t.Name = input.ReadString(); return true;
                case TensorRawData: raw = input.ReadBytes(); return true;
                case TensorFloatData: ReadRepeated(input, floats, s => s.ReadFloat()); return true;
                case TensorInt32Data: ReadRepeated(input, ints, s => (long)s.ReadInt32()); return true;
                case TensorInt64Data: ReadRepeated(input, ints, s => s.ReadInt64()); return true;
                case TensorDoubleData: ReadRepeated(input, doubles, s => s.ReadDouble()); return true;
                case TensorDataLocation: location = input.ReadInt64(); return true;
                default: return false;
            }
        });
        t.Dims = [.. dims];
        if (location != 0) throw new InvalidDataException($"tensor '{t.Name}' keeps its data in an external file, which is not supported; save the model with its weights inside.");
        if (raw is not null)
        {
            var span = raw.Span;
            switch (t.DataType)
            {
                case OnnxDataType.Float: t.FloatData = MemoryMarshal.Cast<byte, float>(span).ToArray(); break;
                case OnnxDataType.Double: t.FloatData = MemoryMarshal.Cast<byte, double>(span).ToArray().Select(v => (float)v).ToArray(); break;
                case OnnxDataType.Int64: t.Int64Data = MemoryMarshal.Cast<byte, long>(span).ToArray(); break;
                case OnnxDataType.Int32: t.Int64Data = MemoryMarshal.Cast<byte, int>(span).ToArray().Select(v => (long)v).ToArray(); break;
                default: break; // other element types are reported by the importer when a node needs them
            }
        }
        else
        {
            if (floats.Count > 0) t.FloatData = [.. floats];
            if (doubles.Count > 0) t.FloatData = doubles.Select(v => (float)v).ToArray();
            if (ints.Count > 0) t.Int64Data = [.. ints];
        }
        return t;
    }

    private static void WriteValueInfo(CodedOutputStream o, OnnxValueInfo v)
    {
        String(o, ValueInfoName, v.Name);
        Nested(o, ValueInfoType, type => Nested(type, TypeTensorType, tensor =>
        {
            tensor.WriteTag(TensorTypeElemType, WireFormat.WireType.Varint);
            tensor.WriteInt32((int)v.ElementType);
            Nested(tensor, TensorTypeShape, shape =>
            {
                for (int i = 0; i < v.Dims.Count; i++)
                {
                    var size = v.Dims[i];
                    var name = i < v.DimNames.Count ? v.DimNames[i] : null;
                    Nested(shape, ShapeDim, d =>
                    {
                        if (size is long s) Int64(d, DimValue, s);
                        else String(d, DimParam, name ?? "");
                    });
                }
            });
        }));
    }

    private static OnnxValueInfo ReadValueInfo(ByteString bytes)
    {
        var v = new OnnxValueInfo();
        Fields(bytes, (field, input) =>
        {
            if (field == ValueInfoName) { v.Name = input.ReadString(); return true; }
            if (field != ValueInfoType) return false;
            Fields(input.ReadBytes(), (f, type) =>
            {
                if (f != TypeTensorType) return false;
                Fields(type.ReadBytes(), (g, tensor) =>
                {
                    if (g == TensorTypeElemType) { v.ElementType = (OnnxDataType)tensor.ReadInt32(); return true; }
                    if (g != TensorTypeShape) return false;
                    Fields(tensor.ReadBytes(), (h, shape) =>
                    {
                        if (h != ShapeDim) return false;
                        long? size = null; string? name = null;
                        Fields(shape.ReadBytes(), (k, d) =>
                        {
                            if (k == DimValue) { size = d.ReadInt64(); return true; }
                            if (k == DimParam) { name = d.ReadString(); return true; }
                            return false;
                        });
                        v.Dims.Add(size);
                        v.DimNames.Add(name);
                        return true;
                    });
                    return true;
                });
                return true;
            });
            return true;
        });
        return v;
    }

    private static bool Set<T>(ref T target, T value)
    {
        target = value;
        return true;
    }

    /// <summary>Calls <paramref name="read"/> for each field; a field it does not consume (returns false) is skipped.</summary>
    private static void Fields(ByteString bytes, Func<int, CodedInputStream, bool> read) => Fields(bytes.ToByteArray(), read);

    private static void Fields(byte[] bytes, Func<int, CodedInputStream, bool> read)
    {
        var input = new CodedInputStream(bytes);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            t_wireType = WireFormat.GetTagWireType(tag);
            if (!read(WireFormat.GetTagFieldNumber(tag), input)) input.SkipLastField();
        }
    }

    /// <summary>The wire type of the field being read (repeated scalars come packed or one by one).</summary>
    [ThreadStatic]
    private static WireFormat.WireType t_wireType;

    /// <summary>Reads one element of a repeated scalar field, or all of them when the field is packed.</summary>
    private static void ReadRepeated<T>(CodedInputStream input, List<T> into, Func<CodedInputStream, T> readOne)
    {
        if (t_wireType != WireFormat.WireType.LengthDelimited)
        {
            into.Add(readOne(input));
            return;
        }
        var packed = new CodedInputStream(input.ReadBytes().ToByteArray());
        while (!packed.IsAtEnd) into.Add(readOne(packed));
    }

    private static byte[] Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        using (var output = new CodedOutputStream(buffer, leaveOpen: true))
        {
            write(output);
        }
        return buffer.ToArray();
    }

    private static void Nested(CodedOutputStream o, int field, Action<CodedOutputStream> write)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(UnsafeByteOperations.UnsafeWrap(Message(write)));
    }

    private static void Int64(CodedOutputStream o, int field, long value)
    {
        o.WriteTag(field, WireFormat.WireType.Varint);
        o.WriteInt64(value);
    }

    private static void String(CodedOutputStream o, int field, string value)
    {
        if (value.Length == 0) return;
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(Encoding.UTF8.GetBytes(value)));
    }
}
