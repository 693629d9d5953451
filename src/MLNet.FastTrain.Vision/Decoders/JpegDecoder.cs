using System.Buffers.Binary;

namespace MLNet.FastTrain.Vision.Decoders;

/// <summary>
/// JPEG (ITU-T T.81) with Huffman coding: baseline, extended sequential (8-bit) and progressive; one (gray) or three
/// components (YCbCr, or RGB when the file says so) with any integral sampling factors; restart markers; the EXIF
/// orientation applied. Decoding follows libjpeg's defaults so results agree closely with djpeg's: an accurate
/// inverse DCT, triangle ("fancy") chroma upsampling for 2×1, 1×2 and 2×2 subsampling, and the JFIF YCbCr → RGB
/// conversion in 16-bit fixed point.
/// </summary>
public static partial class JpegDecoder
{
    /// <summary>Zig-zag position → natural (row-major) position in an 8×8 block.</summary>
    private static ReadOnlySpan<byte> ZigZag =>
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    /// <summary>Whether the data starts with JPEG's SOI marker followed by another marker.</summary>
    public static bool IsJpeg(ReadOnlySpan<byte> data) => data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;

    /// <summary>Decodes a JPEG file's bytes.</summary>
    /// <param name="data">The file's bytes.</param>
    /// <param name="name">Names the data in errors.</param>
    /// <param name="limits">Largest image accepted (checked on the frame's full size).</param>
    /// <param name="scale">
    /// 1, 2, 4 or 8: decode at 1/<paramref name="scale"/> of the width and height (rounded up), as
    /// <c>djpeg -scale 1/N</c> does: each 8×8 block goes through a reduced inverse DCT of its lowest frequencies, so
    /// the full-size image is never formed.
    /// </param>
    public static DecodedImage Decode(byte[] data, string name, DecoderLimits? limits = null, int scale = 1)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (scale is not (1 or 2 or 4 or 8)) throw new ArgumentOutOfRangeException(nameof(scale), $"The scale must be 1, 2, 4 or 8, not {scale}.");
        return new Decoder(data, name, limits ?? DecoderLimits.Default, scale, 0).Run();
    }

    /// <summary>
    /// Decodes a JPEG at the smallest of the scales 1, 1/2, 1/4 and 1/8 that leaves both sides at least
    /// <paramref name="minSide"/> pixels (full size when the image is smaller): what a loader that resizes the shorter
    /// side to <paramref name="minSide"/> needs, for a fraction of the work.
    /// </summary>
    public static DecodedImage DecodeAtLeast(byte[] data, string name, int minSide, DecoderLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(minSide);
        return new Decoder(data, name, limits ?? DecoderLimits.Default, 0, minSide).Run();
    }

    /// <summary>The largest of 8, 4 and 2 that keeps both sides of a width × height image at least minSide, else 1.</summary>
    internal static int ScaleFor(int width, int height, int minSide)
    {
        if (minSide <= 0) return 1;
        foreach (int d in (ReadOnlySpan<int>)[8, 4, 2])
            if ((width + d - 1) / d >= minSide && (height + d - 1) / d >= minSide) return d;
        return 1;
    }

    private sealed class Component
    {
        public int Id, H, V, Tq;
        public int Width, Height;             // samples of this component in the image
        public int BlocksWide, BlocksHigh;    // blocks covering the samples
        public int StrideBlocks, RowsBlocks;  // blocks allocated (whole MCUs)
        public short[] Coefficients = [];
        public int DcPredictor;
        public int DcTable, AcTable;
    }

    private sealed class HuffmanTable
    {
        // For codes up to FastBits long: (length << 8) | symbol, or 0 when longer.
        public const int FastBits = 9;
        public readonly ushort[] Fast = new ushort[1 << FastBits];
        public readonly int[] MaxCode = new int[18];
        public readonly int[] ValueOffset = new int[17];
        public readonly byte[] Symbols = new byte[256];

        public HuffmanTable(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> symbols, string name)
        {
            symbols.CopyTo(Symbols);
            int code = 0, k = 0;
            for (int length = 1; length <= 16; length++)
            {
                ValueOffset[length] = k - code;
                for (int i = 0; i < counts[length - 1]; i++, k++, code++)
                {
                    // Checked before the code is used: a table claiming more codes than its length holds would
                    // otherwise index past the fast-lookup table (found by fuzzing).
                    if (code >= 1 << length) throw new InvalidImageException(name, "a Huffman table has more codes than its lengths allow.");
                    if (length <= FastBits)
                    {
                        int shift = FastBits - length;
                        for (int fill = 0; fill < 1 << shift; fill++) Fast[(code << shift) | fill] = (ushort)((length << 8) | symbols[k]);
                    }
                }
                MaxCode[length] = counts[length - 1] == 0 ? -1 : code - 1;
                code <<= 1;
            }
            MaxCode[17] = int.MaxValue;
        }
    }

    private sealed partial class Decoder(byte[] data, string name, DecoderLimits limits, int scale, int minSide)
    {
        private readonly ushort[][] _quant = new ushort[4][];
        private readonly HuffmanTable?[] _dc = new HuffmanTable?[4];
        private readonly HuffmanTable?[] _ac = new HuffmanTable?[4];
        private Component[] _components = [];
        private int _width, _height, _hMax, _vMax, _mcusWide, _mcusHigh, _restartInterval;
        private bool _progressive, _frameSeen, _ended;
        private int _adobeTransform = -1;
        private int _orientation = 1;
        private int _scans;
        private int _eobRun;

        // Entropy-coded data reader.
        private int _pos;
        private ulong _bits;
        private int _bitCount;
        private bool _hitMarker, _pastEnd;

        public DecodedImage Run()
        {
            _pos = 2;
            while (!_ended)
            {
                int marker = NextMarker();
                switch (marker)
                {
                    case 0xD8: throw Invalid("it has a second start-of-image marker.");
                    case 0xD9: _ended = true; break;
                    case 0xC0 or 0xC1 or 0xC2: ReadFrame(marker == 0xC2); break;
                    case 0xC3 or 0xC5 or 0xC6 or 0xC7 or 0xCB or 0xCD or 0xCE or 0xCF:
                        throw Invalid($"it is a lossless or hierarchical JPEG (SOF{marker - 0xC0}), which is not supported.");
                    case 0xC9 or 0xCA:
                        throw Invalid("it uses arithmetic coding, which is not supported.");
                    case 0xC4: ReadHuffmanTables(); break;
                    case 0xDB: ReadQuantTables(); break;
                    case 0xDD:
                        {
                            var seg = Segment();
                            if (seg.Length < 2) throw Invalid("its DRI segment is too short.");
                            _restartInterval = BinaryPrimitives.ReadUInt16BigEndian(seg);
                            break;
                        }
                    case 0xDA: ReadScan(); break;
                    case 0xE1: ReadExif(Segment()); break;
                    case 0xEE:
                        {
                            var seg = Segment();
                            if (seg.Length >= 12 && seg.StartsWith("Adobe"u8)) _adobeTransform = seg[11];
                            break;
                        }
                    case >= 0xD0 and <= 0xD7: break; // a stray restart marker between scans carries nothing
                    default: Segment(); break;       // APPn, COM, DNL and others: skipped
                }
                if (!_ended && _pos >= data.Length)
                {
                    if (_frameSeen && _scans > 0) throw Invalid("it is truncated (the file ends before its end-of-image marker).");
                    throw Invalid("it is truncated (no image data).");
                }
            }
            if (!_frameSeen || _scans == 0) throw Invalid("it has no frame or no scan.");
            return DecodedImage.Oriented(Output(), _orientation);
        }

        private InvalidImageException Invalid(string reason) => new(name, reason);

        private int NextMarker()
        {
            // Markers may be preceded by fill bytes (0xFF); anything else between segments is skipped as libjpeg does.
            while (_pos < data.Length && data[_pos] != 0xFF) _pos++;
            while (_pos < data.Length && data[_pos] == 0xFF) _pos++;
            if (_pos >= data.Length) throw Invalid(_frameSeen ? "it is truncated (the file ends before its end-of-image marker)." : "it is truncated (no image data).");
            return data[_pos++];
        }

        private ReadOnlySpan<byte> Segment()
        {
            if (_pos + 2 > data.Length) throw Invalid("it is truncated inside a marker segment.");
            int length = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(_pos));
            if (length < 2 || _pos + length > data.Length) throw Invalid($"a marker segment of {length} bytes runs past the end of the file.");
            var seg = data.AsSpan(_pos + 2, length - 2);
            _pos += length;
            return seg;
        }

        private void ReadFrame(bool progressive)
        {
            if (_frameSeen) throw Invalid("it has more than one frame.");
            var seg = Segment();
            if (seg.Length < 6) throw Invalid("its frame header is too short.");
            if (seg[0] != 8) throw Invalid($"its sample precision is {seg[0]} bits; only 8-bit JPEG is supported.");
            _height = BinaryPrimitives.ReadUInt16BigEndian(seg[1..]);
            _width = BinaryPrimitives.ReadUInt16BigEndian(seg[3..]);
            if (_height == 0) throw Invalid("its height is 0 (defined later by a DNL marker), which is not supported.");
            limits.Check(name, _width, _height);
            int count = seg[5];
            if (count is not (1 or 3 or 4)) throw Invalid($"it has {count} colour components; 1 (gray), 3 (YCbCr or RGB) and 4 (CMYK or YCCK) are supported.");
            if (seg.Length < 6 + 3 * count) throw Invalid("its frame header is truncated.");
            _components = new Component[count];
            for (int i = 0; i < count; i++)
            {
                var c = new Component { Id = seg[6 + 3 * i], H = seg[7 + 3 * i] >> 4, V = seg[7 + 3 * i] & 15, Tq = seg[8 + 3 * i] };
                if (c.H is < 1 or > 4 || c.V is < 1 or > 4) throw Invalid($"component {c.Id} has sampling factors {c.H}×{c.V}; 1 to 4 are valid.");
                if (c.Tq > 3) throw Invalid($"component {c.Id} names quantization table {c.Tq}; 0 to 3 exist.");
                _components[i] = c;
            }
            _hMax = _components.Max(c => c.H);
            _vMax = _components.Max(c => c.V);
            if (_components.Any(c => _hMax % c.H != 0 || _vMax % c.V != 0)) throw Invalid("its sampling factors are not integral ratios, which is not supported.");
            _mcusWide = (_width + 8 * _hMax - 1) / (8 * _hMax);
            _mcusHigh = (_height + 8 * _vMax - 1) / (8 * _vMax);
            long blocks = 0;
            foreach (var c in _components)
            {
                c.Width = (int)(((long)_width * c.H + _hMax - 1) / _hMax);
                c.Height = (int)(((long)_height * c.V + _vMax - 1) / _vMax);
                c.BlocksWide = (c.Width + 7) / 8;
                c.BlocksHigh = (c.Height + 7) / 8;
                c.StrideBlocks = _mcusWide * c.H;
                c.RowsBlocks = _mcusHigh * c.V;
                blocks += (long)c.StrideBlocks * c.RowsBlocks;
            }
            // Every block costs at least one bit of DC data, so a file this short cannot hold this many blocks:
            // refuse before allocating for a size the data cannot fill.
            if (blocks > 8L * data.Length) throw Invalid($"its {_width}×{_height} frame needs more data than the file's {data.Length} bytes can hold.");
            foreach (var c in _components) c.Coefficients = new short[(long)c.StrideBlocks * c.RowsBlocks * 64];
            _progressive = progressive;
            _frameSeen = true;
        }

        private void ReadQuantTables()
        {
            var seg = Segment();
            while (seg.Length > 0)
            {
                int precision = seg[0] >> 4, id = seg[0] & 15;
                if (id > 3 || precision > 1) throw Invalid($"a quantization table has id {id} and precision {precision}.");
                int size = precision == 0 ? 64 : 128;
                if (seg.Length < 1 + size) throw Invalid("a quantization table is truncated.");
                var table = new ushort[64];
                for (int k = 0; k < 64; k++)
                    table[ZigZag[k]] = precision == 0 ? seg[1 + k] : BinaryPrimitives.ReadUInt16BigEndian(seg[(1 + 2 * k)..]);
                _quant[id] = table;
                seg = seg[(1 + size)..];
            }
        }

        private void ReadHuffmanTables()
        {
            var seg = Segment();
            while (seg.Length > 0)
            {
                if (seg.Length < 17) throw Invalid("a Huffman table is truncated.");
                int cls = seg[0] >> 4, id = seg[0] & 15;
                if (cls > 1 || id > 3) throw Invalid($"a Huffman table has class {cls} and id {id}.");
                var counts = seg.Slice(1, 16);
                int total = 0;
                foreach (var n in counts) total += n;
                if (total > 256 || seg.Length < 17 + total) throw Invalid("a Huffman table is truncated or has more than 256 symbols.");
                var table = new HuffmanTable(counts, seg.Slice(17, total), name);
                if (cls == 0) _dc[id] = table; else _ac[id] = table;
                seg = seg[(17 + total)..];
            }
        }

        private void ReadExif(ReadOnlySpan<byte> seg)
        {
            if (seg.Length < 14 || !seg.StartsWith("Exif\0\0"u8)) return;
            var tiff = seg[6..].ToArray();
            bool little = tiff[0] == 'I' && tiff[1] == 'I';
            if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return;
            uint U32(int at) => at + 4 <= tiff.Length ? little ? BinaryPrimitives.ReadUInt32LittleEndian(tiff.AsSpan(at)) : BinaryPrimitives.ReadUInt32BigEndian(tiff.AsSpan(at)) : 0;
            int U16(int at) => at + 2 <= tiff.Length ? little ? BinaryPrimitives.ReadUInt16LittleEndian(tiff.AsSpan(at)) : BinaryPrimitives.ReadUInt16BigEndian(tiff.AsSpan(at)) : 0;
            long ifd = U32(4);
            if (ifd < 8 || ifd + 2 > tiff.Length) return;
            int entries = U16((int)ifd);
            for (int i = 0; i < entries; i++)
            {
                int at = (int)ifd + 2 + 12 * i;
                if (at + 12 > tiff.Length) return;
                if (U16(at) == 0x0112 && U16(at + 2) == 3)
                {
                    int value = U16(at + 8);
                    if (value is >= 1 and <= 8) _orientation = value;
                    return;
                }
            }
        }

        private void ReadScan()
        {
            if (!_frameSeen) throw Invalid("a scan comes before the frame header.");
            if (++_scans > 1000) throw Invalid("it has more than 1000 scans.");
            var seg = Segment();
            int count = seg.Length > 0 ? seg[0] : 0;
            if (count is < 1 or > 4 || seg.Length < 4 + 2 * count) throw Invalid("its scan header is malformed.");
            var scan = new Component[count];
            for (int i = 0; i < count; i++)
            {
                int id = seg[1 + 2 * i];
                var c = Array.Find(_components, x => x.Id == id) ?? throw Invalid($"a scan names component {id}, which the frame does not have.");
                c.DcTable = seg[2 + 2 * i] >> 4;
                c.AcTable = seg[2 + 2 * i] & 15;
                if (c.DcTable > 3 || c.AcTable > 3) throw Invalid("a scan names a Huffman table beyond 3.");
                scan[i] = c;
            }
            int ss = seg[1 + 2 * count], se = seg[2 + 2 * count], ah = seg[3 + 2 * count] >> 4, al = seg[3 + 2 * count] & 15;
            if (_progressive)
            {
                bool dc = ss == 0;
                if (dc && se != 0 || !dc && (se < ss || se > 63 || count != 1) || al > 13)
                    throw Invalid($"its progressive scan parameters (Ss {ss}, Se {se}, Ah {ah}, Al {al}) are invalid.");
            }
            else if (ss != 0 || se != 63 || ah != 0 || al != 0)
            {
                throw Invalid("its sequential scan does not cover coefficients 0 to 63.");
            }
            foreach (var c in scan)
            {
                bool needDc = ss == 0 && ah == 0, needAc = se > 0;
                if (needDc && _dc[c.DcTable] is null || needAc && _ac[c.AcTable] is null) throw Invalid($"a scan uses a Huffman table that was never defined (component {c.Id}).");
                if (_quant[c.Tq] is null) throw Invalid($"component {c.Id} uses quantization table {c.Tq}, which was never defined.");
            }
            DecodeScan(scan, ss, se, ah, al);
        }
    }
}
