using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace MLNet.FastTrain.Engine.Serialization;

/// <summary>Why a model file could not be read.</summary>
public enum ModelFileError
{
    /// <summary>The file does not start with the model-file signature: it is some other kind of file.</summary>
    NotAModelFile,

    /// <summary>The file was written by a newer format version than this library reads.</summary>
    UnsupportedVersion,

    /// <summary>The file ends before the length its header promises.</summary>
    Truncated,

    /// <summary>The checksum does not match the content, or the content is malformed.</summary>
    Damaged,
}

/// <summary>A model file could not be read; says which file and why.</summary>
public sealed class ModelFileException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ModelFileException(string path, ModelFileError error, string detail)
        : base($"'{path}' {Describe(error)}: {detail}")
    {
        Path = path;
        Error = error;
    }

    /// <summary>Creates the exception.</summary>
    public ModelFileException() { Path = ""; }

    /// <summary>Creates the exception.</summary>
    public ModelFileException(string message) : base(message) { Path = ""; }

    /// <summary>Creates the exception.</summary>
    public ModelFileException(string message, Exception inner) : base(message, inner) { Path = ""; }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it.</summary>
    public ModelFileError Error { get; }

    private static string Describe(ModelFileError e) => e switch
    {
        ModelFileError.NotAModelFile => "is not a MLNet.FastTrain model file",
        ModelFileError.UnsupportedVersion => "was written by a newer version of the model-file format",
        ModelFileError.Truncated => "is truncated",
        _ => "is damaged",
    };
}

/// <summary>
/// Reads and writes a state dict with string metadata as one versioned binary file.
/// </summary>
/// <remarks>
/// Layout, little-endian:
/// <code>
/// magic    8 bytes  "FTMODEL\0"
/// version  u32      1
/// length   u64      payload bytes
/// payload           metadata count u32, then (key, value) strings;
///                   entry count u32, then per entry: name string, dtype u8 (0 float32, 1 float64),
///                   rank u8, dims i32 × rank, raw element bytes
/// crc      u32      CRC-32 of the payload
/// </code>
/// Strings are a u32 byte count followed by UTF-8. Files are written to a temporary name beside the target and
/// renamed over it, so a crash never leaves a half-written model.
/// </remarks>
public static class ModelFile
{
    /// <summary>The current format version.</summary>
    public const uint FormatVersion = 1;

    private static ReadOnlySpan<byte> Magic => "FTMODEL\0"u8;

    private const int HeaderLength = 8 + 4 + 8;

    /// <summary>Writes the file atomically (<see cref="AtomicFile"/>).</summary>
    /// <exception cref="DiskFullException">The disk filled up; the previous file is intact.</exception>
    public static void Save(string path, StateDict state, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(state);
        var payload = new MemoryStream();
        using (var w = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            var meta = metadata ?? new Dictionary<string, string>();
            w.Write((uint)meta.Count);
            foreach (var (key, value) in meta.OrderBy(kv => kv.Key, StringComparer.Ordinal)) { WriteString(w, key); WriteString(w, value); }
            w.Write((uint)state.Count);
            foreach (var (name, t) in state)
            {
                WriteString(w, name);
                w.Write((byte)(t.DType == DType.Float32 ? 0 : 1));
                w.Write((byte)t.Rank);
                foreach (int d in t.Shape) w.Write(d);
                if (t.DType == DType.Float32) WriteFloats(w, t.AsSpan()); else WriteDoubles(w, t.AsDoubleSpan());
            }
        }

        AtomicFile.Write(path, f =>
        {
            Span<byte> header = stackalloc byte[HeaderLength];
            Magic.CopyTo(header);
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], FormatVersion);
            BinaryPrimitives.WriteUInt64LittleEndian(header[12..], (ulong)payload.Length);
            f.Write(header);
            var bytes = payload.GetBuffer().AsSpan(0, (int)payload.Length);
            f.Write(bytes);
            Span<byte> crc = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32.Compute(bytes));
            f.Write(crc);
        });
    }

    /// <summary>Reads a file written by <see cref="Save"/>.</summary>
    /// <exception cref="ModelFileException">The file is foreign, from a newer version, truncated or damaged.</exception>
    public static (StateDict State, IReadOnlyDictionary<string, string> Metadata) Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var data = File.ReadAllBytes(path);
        if (data.Length < Magic.Length || !data.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new ModelFileException(path, ModelFileError.NotAModelFile, "the first 8 bytes are not \"FTMODEL\\0\".");
        if (data.Length < HeaderLength)
            throw new ModelFileException(path, ModelFileError.Truncated, $"{data.Length} bytes is shorter than the {HeaderLength}-byte header.");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(8));
        if (version > FormatVersion || version == 0)
            throw new ModelFileException(path, ModelFileError.UnsupportedVersion, $"format version {version}; this library reads version {FormatVersion}.");
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(12));
        if ((ulong)data.Length < HeaderLength + length + 4)
            throw new ModelFileException(path, ModelFileError.Truncated, $"the header promises {length} payload bytes and a checksum, but the file has {data.Length} bytes in all.");
        if ((ulong)data.Length > HeaderLength + length + 4)
            throw new ModelFileException(path, ModelFileError.Damaged, $"{(ulong)data.Length - (HeaderLength + length + 4)} unexpected bytes follow the checksum.");
        var payload = data.AsMemory(HeaderLength, (int)length);
        uint expected = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(HeaderLength + (int)length));
        uint actual = Crc32.Compute(payload.Span);
        if (expected != actual)
            throw new ModelFileException(path, ModelFileError.Damaged, $"checksum mismatch (stored 0x{expected:X8}, computed 0x{actual:X8}).");

        try
        {
            using var r = new BinaryReader(new MemoryStream(data, HeaderLength, (int)length), Encoding.UTF8);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            uint metaCount = r.ReadUInt32();
            for (uint i = 0; i < metaCount; i++) metadata[ReadString(r)] = ReadString(r);
            var state = new StateDict();
            uint count = r.ReadUInt32();
            for (uint i = 0; i < count; i++)
            {
                string name = ReadString(r);
                byte dtype = r.ReadByte();
                if (dtype > 1) throw new InvalidDataException($"entry '{name}' has unknown dtype code {dtype}.");
                int rank = r.ReadByte();
                var shape = new int[rank];
                long n = 1;
                for (int d = 0; d < rank; d++)
                {
                    shape[d] = r.ReadInt32();
                    if (shape[d] < 0) throw new InvalidDataException($"entry '{name}' has a negative dimension.");
                    n *= shape[d];
                }
                long bytes = n * (dtype == 0 ? 4 : 8);
                if (bytes > r.BaseStream.Length - r.BaseStream.Position) throw new InvalidDataException($"entry '{name}' claims {bytes} bytes beyond the payload's end.");
                var t = Tensor.Zeros(shape, dtype == 0 ? DType.Float32 : DType.Float64);
                if (dtype == 0) ReadFloats(r, t.AsSpan()); else ReadDoubles(r, t.AsDoubleSpan());
                state.Add(name, t);
            }
            if (r.BaseStream.Position != r.BaseStream.Length) throw new InvalidDataException("bytes remain after the last entry.");
            return (state, metadata);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or ArgumentException or DecoderFallbackException)
        {
            throw new ModelFileException(path, ModelFileError.Damaged, e.Message);
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((uint)bytes.Length);
        w.Write(bytes);
    }

    private static string ReadString(BinaryReader r)
    {
        uint n = r.ReadUInt32();
        if (n > r.BaseStream.Length - r.BaseStream.Position) throw new InvalidDataException($"a string claims {n} bytes beyond the payload's end.");
        return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(r.ReadBytes((int)n));
    }

    // Elements are stored little-endian; on a big-endian machine they are swapped on the way through.
    private static void WriteFloats(BinaryWriter w, ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian) { w.Write(MemoryMarshal.AsBytes(values)); return; }
        Span<byte> buffer = stackalloc byte[4];
        foreach (float v in values) { BinaryPrimitives.WriteSingleLittleEndian(buffer, v); w.Write(buffer); }
    }

    private static void WriteDoubles(BinaryWriter w, ReadOnlySpan<double> values)
    {
        if (BitConverter.IsLittleEndian) { w.Write(MemoryMarshal.AsBytes(values)); return; }
        Span<byte> buffer = stackalloc byte[8];
        foreach (double v in values) { BinaryPrimitives.WriteDoubleLittleEndian(buffer, v); w.Write(buffer); }
    }

    private static void ReadFloats(BinaryReader r, Span<float> values)
    {
        r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values));
        if (!BitConverter.IsLittleEndian)
            for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(values[i])));
    }

    private static void ReadDoubles(BinaryReader r, Span<double> values)
    {
        r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values));
        if (!BitConverter.IsLittleEndian)
            for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int64BitsToDouble(BinaryPrimitives.ReverseEndianness(BitConverter.DoubleToInt64Bits(values[i])));
    }
}
