namespace MLNet.FastTrain.Vision.Decoders;

public static partial class JpegDecoder
{
    private sealed partial class Decoder
    {
        private void DecodeScan(Component[] scan, int ss, int se, int ah, int al)
        {
            ResetReader();
            foreach (var c in scan) c.DcPredictor = 0;
            _eobRun = 0;
            bool single = scan.Length == 1;
            var only = scan[0];
            int mcusWide = single ? only.BlocksWide : _mcusWide;
            int mcusHigh = single ? only.BlocksHigh : _mcusHigh;
            long total = (long)mcusWide * mcusHigh;
            int untilRestart = _restartInterval;
            int expectedRst = 0;
            for (long mcu = 0; mcu < total; mcu++)
            {
                if (_restartInterval > 0 && untilRestart == 0)
                {
                    ReadRestart(ref expectedRst);
                    foreach (var c in scan) c.DcPredictor = 0;
                    _eobRun = 0;
                    untilRestart = _restartInterval;
                }
                int mx = (int)(mcu % mcusWide), my = (int)(mcu / mcusWide);
                if (single)
                {
                    DecodeBlock(only, only.Coefficients.AsSpan(BlockOffset(only, mx, my), 64), ss, se, ah, al);
                }
                else
                {
                    foreach (var c in scan)
                        for (int by = 0; by < c.V; by++)
                            for (int bx = 0; bx < c.H; bx++)
                                DecodeBlock(c, c.Coefficients.AsSpan(BlockOffset(c, mx * c.H + bx, my * c.V + by), 64), ss, se, ah, al);
                }
                if (_restartInterval > 0) untilRestart--;
            }
            // Leave the reader at the marker that ends the scan data.
            _pos = MarkerAfterScan();
        }

        private static int BlockOffset(Component c, int bx, int by) => (by * c.StrideBlocks + bx) * 64;

        private void DecodeBlock(Component c, Span<short> block, int ss, int se, int ah, int al)
        {
            if (!_progressive)
            {
                DecodeBaseline(c, block);
            }
            else if (ss == 0)
            {
                if (ah == 0)
                {
                    int t = Decode(_dc[c.DcTable]!);
                    c.DcPredictor += t == 0 ? 0 : Extend(Bits(t), t);
                    block[0] = (short)(c.DcPredictor * (1 << al));
                }
                else if (Bits(1) != 0)
                {
                    block[0] |= (short)(1 << al);
                }
            }
            else if (ah == 0)
            {
                DecodeAcFirst(c, block, ss, se, al);
            }
            else
            {
                DecodeAcRefine(c, block, ss, se, al);
            }
        }

        private void DecodeBaseline(Component c, Span<short> block)
        {
            int t = Decode(_dc[c.DcTable]!);
            c.DcPredictor += t == 0 ? 0 : Extend(Bits(t), t);
            block[0] = (short)c.DcPredictor;
            var ac = _ac[c.AcTable]!;
            for (int k = 1; k < 64;)
            {
                int rs = Decode(ac), r = rs >> 4, s = rs & 15;
                if (s == 0)
                {
                    if (r != 15) break;
                    k += 16;
                    continue;
                }
                k += r;
                if (k > 63) throw Invalid("a block's coefficients run past the 64th (the data is damaged).");
                block[ZigZag[k]] = (short)Extend(Bits(s), s);
                k++;
            }
        }

        private void DecodeAcFirst(Component c, Span<short> block, int ss, int se, int al)
        {
            if (_eobRun > 0)
            {
                _eobRun--;
                return;
            }
            var ac = _ac[c.AcTable]!;
            for (int k = ss; k <= se;)
            {
                int rs = Decode(ac), r = rs >> 4, s = rs & 15;
                if (s == 0)
                {
                    if (r < 15)
                    {
                        _eobRun = (1 << r) - 1;
                        if (r > 0) _eobRun += Bits(r);
                        break;
                    }
                    k += 16;
                    continue;
                }
                k += r;
                if (k > 63) throw Invalid("a block's coefficients run past the 64th (the data is damaged).");
                block[ZigZag[k]] = (short)(Extend(Bits(s), s) * (1 << al));
                k++;
            }
        }

        /// <summary>
        /// Successive approximation of AC coefficients (T.81 G.1.2.3): each non-zero coefficient already known gets one
        /// correction bit; new coefficients of ±1·2^Al appear after runs that count only zero-history coefficients.
        /// </summary>
        private void DecodeAcRefine(Component c, Span<short> block, int ss, int se, int al)
        {
            int plus = 1 << al, minus = -1 << al;
            int k = ss;
            if (_eobRun == 0)
            {
                var ac = _ac[c.AcTable]!;
                for (; k <= se; k++)
                {
                    int rs = Decode(ac), r = rs >> 4, s = rs & 15;
                    int value = 0;
                    if (s != 0)
                    {
                        if (s != 1) throw Invalid("a refinement scan codes a new coefficient larger than one step (the data is damaged).");
                        value = Bits(1) != 0 ? plus : minus;
                    }
                    else if (r != 15)
                    {
                        _eobRun = 1 << r;
                        if (r > 0) _eobRun += Bits(r);
                        break;
                    }
                    // Skip r zero-history coefficients, refining the non-zero ones passed on the way.
                    for (; k <= se; k++)
                    {
                        int z = ZigZag[k];
                        if (block[z] != 0)
                        {
                            Refine(block, z, plus, minus);
                        }
                        else
                        {
                            if (r == 0) break;
                            r--;
                        }
                    }
                    if (value != 0)
                    {
                        if (k > se) throw Invalid("a refinement scan places a coefficient past the band (the data is damaged).");
                        block[ZigZag[k]] = (short)value;
                    }
                }
            }
            if (_eobRun > 0)
            {
                for (; k <= se; k++)
                {
                    int z = ZigZag[k];
                    if (block[z] != 0) Refine(block, z, plus, minus);
                }
                _eobRun--;
            }
        }

        private void Refine(Span<short> block, int z, int plus, int minus)
        {
            if (Bits(1) != 0 && (block[z] & plus) == 0) block[z] += (short)(block[z] >= 0 ? plus : minus);
        }

        private static int Extend(int v, int t) => v < 1 << (t - 1) ? v - (1 << t) + 1 : v;

        private void ResetReader()
        {
            _bits = 0;
            _bitCount = 0;
            _hitMarker = false;
        }

        /// <summary>Tops the bit buffer up to at least 57 bits; past a marker or the end of the data, zeros are fed.</summary>
        private void Fill()
        {
            while (_bitCount <= 56)
            {
                int b = 0;
                if (!_hitMarker)
                {
                    if (_pos >= data.Length)
                    {
                        _pastEnd = true;
                        _hitMarker = true;
                    }
                    else if (data[_pos] == 0xFF)
                    {
                        int next = _pos + 1 < data.Length ? data[_pos + 1] : -1;
                        if (next == 0)
                        {
                            b = 0xFF;
                            _pos += 2;
                        }
                        else
                        {
                            _hitMarker = true; // the marker stays for the caller
                        }
                    }
                    else
                    {
                        b = data[_pos++];
                    }
                }
                _bits |= (ulong)b << (56 - _bitCount);
                _bitCount += 8;
            }
        }

        private int Bits(int n)
        {
            if (n == 0) return 0;
            if (_bitCount < n) Fill();
            int v = (int)(_bits >> (64 - n));
            _bits <<= n;
            _bitCount -= n;
            return v;
        }

        private int Decode(HuffmanTable table)
        {
            if (_bitCount < 16) Fill();
            int peek = (int)(_bits >> (64 - HuffmanTable.FastBits));
            int fast = table.Fast[peek];
            if (fast != 0)
            {
                int length = fast >> 8;
                _bits <<= length;
                _bitCount -= length;
                return fast & 0xFF;
            }
            int code = (int)(_bits >> (64 - HuffmanTable.FastBits));
            int len = HuffmanTable.FastBits;
            while (code > table.MaxCode[len])
            {
                len++;
                if (len > 16) throw Invalid("its entropy-coded data holds a code no Huffman table defines (the data is damaged).");
                code = (int)(_bits >> (64 - len));
            }
            _bits <<= len;
            _bitCount -= len;
            int index = code + table.ValueOffset[len];
            if ((uint)index > 255) throw Invalid("its entropy-coded data holds a code no Huffman table defines (the data is damaged).");
            return table.Symbols[index];
        }

        private void ReadRestart(ref int expected)
        {
            // Discard the bits left in the buffer: they are padding before the RST marker.
            int at = MarkerAfterScan();
            if (_pastEnd || at + 1 >= data.Length) throw Invalid("it is truncated (the data ends inside a scan).");
            int marker = data[at + 1];
            if (marker != 0xD0 + expected)
                throw Invalid(marker is >= 0xD0 and <= 0xD7 ? $"restart marker RST{marker - 0xD0} comes where RST{expected} was due (the data is damaged)." : "a restart marker is missing (the data is damaged).");
            _pos = at + 2;
            expected = (expected + 1) & 7;
            ResetReader();
        }

        /// <summary>The position of the next marker at or after the reader (skipping stuffed 0xFF00 pairs).</summary>
        private int MarkerAfterScan()
        {
            if (_pastEnd) throw Invalid("it is truncated (the data ends inside a scan).");
            int p = _pos;
            while (p + 1 < data.Length && !(data[p] == 0xFF && data[p + 1] != 0 && data[p + 1] != 0xFF)) p++;
            if (p + 1 >= data.Length) throw Invalid("it is truncated (the data ends inside a scan).");
            return p;
        }
    }
}
