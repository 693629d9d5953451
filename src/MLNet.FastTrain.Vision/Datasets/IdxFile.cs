using System.Buffers.Binary;
using System.IO.Compression;

namespace MLNet.FastTrain.Vision.Datasets;

/// <summary>The IDX file a reader could not use, and why.</summary>
public sealed class InvalidDatasetException : IOException
{
    /// <summary>Creates the exception naming the file.</summary>
    public InvalidDatasetException(string path, string reason) : base($"'{path}': {reason}") { Path = path; }

    /// <summary>Creates the exception.</summary>
    public InvalidDatasetException() { Path = ""; }

    /// <summary>Creates the exception.</summary>
    public InvalidDatasetException(string message) : base(message) { Path = ""; }

    /// <summary>Creates the exception.</summary>
    public InvalidDatasetException(string message, Exception inner) : base(message, inner) { Path = ""; }

    /// <summary>The file.</summary>
    public string Path { get; }
}

/// <summary>
/// Reads IDX files, the format of MNIST and Fashion-MNIST: bytes 0–1 zero, byte 2 the element type (0x08 unsigned
/// byte), byte 3 the number of dimensions, then each dimension as a big-endian 32-bit integer, then the data.
/// Gzipped files (".gz", or starting with the gzip signature 1F 8B) are decompressed.
/// </summary>
public static class IdxFile
{
    /// <summary>Reads an unsigned-byte IDX file: its dimensions and data.</summary>
    public static (int[] Dimensions, byte[] Data) ReadBytes(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new InvalidDatasetException(path, "the file does not exist.");
        byte[] raw = File.ReadAllBytes(path);
        if (raw.Length >= 2 && raw[0] == 0x1F && raw[1] == 0x8B)
        {
            try
            {
                using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
                using var ms = new MemoryStream();
                gz.CopyTo(ms);
                raw = ms.ToArray();
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDatasetException(path, $"the gzip stream is damaged ({e.Message}).");
            }
        }
        if (raw.Length < 4 || raw[0] != 0 || raw[1] != 0)
            throw new InvalidDatasetException(path, "it is not an IDX file (the first two bytes must be zero).");
        if (raw[2] != 0x08)
            throw new InvalidDatasetException(path, $"element type 0x{raw[2]:X2} is not supported; only unsigned bytes (0x08) are.");
        int rank = raw[3];
        if (rank == 0 || raw.Length < 4 + 4 * rank)
            throw new InvalidDatasetException(path, $"the header declares {rank} dimensions but the file is {raw.Length} bytes long.");
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 + 4 * i));
            if (dims[i] < 0) throw new InvalidDatasetException(path, $"dimension {i} is negative.");
            count *= dims[i];
        }
        long offset = 4 + 4 * rank;
        if (raw.Length - offset != count)
            throw new InvalidDatasetException(path, $"the header promises {count} values ({string.Join("×", dims)}) but {raw.Length - offset} follow.");
        return (dims, raw[(int)offset..]);
    }
}
