using System.Buffers.Binary;
using System.Text;

namespace MLNet.FastTrain.TorchSharp;

/// <summary>One symbol version a shared library requires (an entry of its <c>.gnu.version_r</c> section).</summary>
/// <param name="File">The library it is required from, as in DT_NEEDED (for example "libstdc++.so.6").</param>
/// <param name="Version">The version name (for example "GLIBCXX_3.4.32").</param>
/// <param name="Weak">Whether the requirement carries VER_FLG_WEAK (the loader then accepts its absence).</param>
/// <param name="Index">The version index symbols refer to it by (<c>vna_other</c>).</param>
/// <param name="Symbols">The undefined dynamic symbols bound to this version.</param>
public sealed record SymbolVersionRequirement(string File, string Version, bool Weak, int Index, IReadOnlyList<string> Symbols);

/// <summary>
/// Reads and edits the GNU symbol-versioning sections of a 64-bit little-endian ELF shared library: the versions it
/// requires (<c>SHT_GNU_verneed</c>), the versions a library defines (<c>SHT_GNU_verdef</c>), and the one edit the
/// TorchSharp loader step needs, marking a requirement weak.
/// </summary>
public static class ElfSymbolVersions
{
    private const uint ShtDynsym = 11, ShtVerdef = 0x6ffffffd, ShtVerneed = 0x6ffffffe, ShtVersym = 0x6fffffff;
    private const ushort VerFlagWeak = 0x2;

    /// <summary>The versions <paramref name="image"/> requires, with the symbols bound to each.</summary>
    /// <exception cref="FormatException">Not a 64-bit little-endian ELF file, or its version sections are malformed.</exception>
    public static IReadOnlyList<SymbolVersionRequirement> Requirements(ReadOnlySpan<byte> image) =>
        ReadRequirements(image).Select(r => r.Requirement).ToList();

    /// <summary>The version names <paramref name="image"/> defines (empty when it has no version definitions).</summary>
    public static IReadOnlySet<string> Definitions(ReadOnlySpan<byte> image)
    {
        var sections = Sections(image);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var def in sections.Where(s => s.Type == ShtVerdef))
        {
            var strings = StringTable(image, sections, def.Link);
            long at = def.Offset;
            for (uint n = 0; n < def.Info; n++)
            {
                int count = U16(image, at + 6);
                long aux = at + U32(image, at + 12);
                if (count > 0) names.Add(Str(image, strings, U32(image, aux)));
                uint next = U32(image, at + 16);
                if (next == 0) break;
                at += next;
            }
        }
        return names;
    }

    /// <summary>
    /// Sets VER_FLG_WEAK on the requirement of <paramref name="version"/> in <paramref name="image"/>, in place;
    /// returns false when the image does not require it or already marks it weak.
    /// </summary>
    public static bool MarkWeak(Span<byte> image, string version)
    {
        ArgumentNullException.ThrowIfNull(version);
        foreach (var (requirement, flagsOffset) in ReadRequirements(image))
        {
            if (requirement.Version != version || requirement.Weak) continue;
            ushort flags = U16(image, flagsOffset);
            BinaryPrimitives.WriteUInt16LittleEndian(image[(int)flagsOffset..], (ushort)(flags | VerFlagWeak));
            return true;
        }
        return false;
    }

    private static List<(SymbolVersionRequirement Requirement, long FlagsOffset)> ReadRequirements(ReadOnlySpan<byte> image)
    {
        var sections = Sections(image);
        var bound = BoundSymbols(image, sections);
        var result = new List<(SymbolVersionRequirement, long)>();
        foreach (var need in sections.Where(s => s.Type == ShtVerneed))
        {
            var strings = StringTable(image, sections, need.Link);
            long at = need.Offset;
            for (uint n = 0; n < need.Info; n++)
            {
                int count = U16(image, at + 2);
                string file = Str(image, strings, U32(image, at + 4));
                long aux = at + U32(image, at + 8);
                for (int a = 0; a < count; a++)
                {
                    ushort flags = U16(image, aux + 4);
                    int index = U16(image, aux + 6) & 0x7fff;
                    string name = Str(image, strings, U32(image, aux + 8));
                    result.Add((new SymbolVersionRequirement(file, name, (flags & VerFlagWeak) != 0, index,
                        bound.TryGetValue(index, out var symbols) ? symbols : []), aux + 4));
                    uint nextAux = U32(image, aux + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = U32(image, at + 12);
                if (next == 0) break;
                at += next;
            }
        }
        return result;
    }

    // Undefined dynamic symbols by the version index .gnu.version gives them.
    private static Dictionary<int, List<string>> BoundSymbols(ReadOnlySpan<byte> image, List<Section> sections)
    {
        var result = new Dictionary<int, List<string>>();
        var dynsym = sections.FirstOrDefault(s => s.Type == ShtDynsym);
        var versym = sections.FirstOrDefault(s => s.Type == ShtVersym);
        if (dynsym is null || versym is null || dynsym.EntrySize == 0) return result;
        var strings = StringTable(image, sections, dynsym.Link);
        long count = dynsym.Size / dynsym.EntrySize;
        for (long i = 1; i < count; i++)
        {
            long sym = dynsym.Offset + i * dynsym.EntrySize;
            if (U16(image, sym + 6) != 0) continue; // defined here
            int index = U16(image, versym.Offset + 2 * i) & 0x7fff;
            if (index < 2) continue; // local or global, unversioned
            if (!result.TryGetValue(index, out var list)) result[index] = list = [];
            list.Add(Str(image, strings, U32(image, sym)));
        }
        return result;
    }

    private sealed record Section(uint Type, long Offset, long Size, uint Link, uint Info, long EntrySize);

    private static List<Section> Sections(ReadOnlySpan<byte> image)
    {
        if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
            throw new FormatException("Not an ELF file.");
        if (image[4] != 2 || image[5] != 1) throw new FormatException("Not a 64-bit little-endian ELF file.");
        long shoff = (long)U64(image, 0x28);
        int entrySize = U16(image, 0x3A), count = U16(image, 0x3C);
        if (entrySize < 64 || shoff <= 0 || shoff + (long)entrySize * count > image.Length) throw new FormatException("The ELF section header table lies outside the file.");
        var sections = new List<Section>(count);
        for (int i = 0; i < count; i++)
        {
            long h = shoff + (long)i * entrySize;
            var s = new Section(U32(image, h + 4), (long)U64(image, h + 24), (long)U64(image, h + 32), U32(image, h + 40), U32(image, h + 44), (long)U64(image, h + 56));
            if (s.Type != 8 && (s.Offset < 0 || s.Size < 0 || s.Offset + s.Size > image.Length)) // 8 = SHT_NOBITS
                throw new FormatException($"ELF section {i} lies outside the file.");
            sections.Add(s);
        }
        return sections;
    }

    private static Section StringTable(ReadOnlySpan<byte> image, List<Section> sections, uint link) =>
        link < sections.Count ? sections[(int)link] : throw new FormatException($"An ELF section links to string table {link}, which does not exist.");

    private static string Str(ReadOnlySpan<byte> image, Section table, uint offset)
    {
        if (offset >= table.Size) throw new FormatException("An ELF string offset lies outside its table.");
        var rest = image.Slice((int)(table.Offset + offset), (int)(table.Size - offset));
        int end = rest.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]);
    }

    private static ushort U16(ReadOnlySpan<byte> b, long at) => at + 2 <= b.Length && at >= 0 ? BinaryPrimitives.ReadUInt16LittleEndian(b[(int)at..]) : throw Outside();
    private static uint U32(ReadOnlySpan<byte> b, long at) => at + 4 <= b.Length && at >= 0 ? BinaryPrimitives.ReadUInt32LittleEndian(b[(int)at..]) : throw Outside();
    private static ulong U64(ReadOnlySpan<byte> b, long at) => at + 8 <= b.Length && at >= 0 ? BinaryPrimitives.ReadUInt64LittleEndian(b[(int)at..]) : throw Outside();
    private static FormatException Outside() => new("An ELF structure runs past the end of the file.");
}
