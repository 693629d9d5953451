using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Serialization;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

public sealed class ModelFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftmodel-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static StateDict Sample()
    {
        var net = new Sequential(new Conv2d(1, 2, 3, generator: new Generator(1)), new BatchNorm2d(2));
        var s = net.StateDict();
        s.Add("double_entry", Tensor.FromArray(new[] { 1.0 / 3, Math.PI }));
        s.Add("scalar", Tensor.Scalar(5));
        return s;
    }

    [Fact]
    public void Round_trip_keeps_names_shapes_values_dtypes_and_metadata()
    {
        var path = PathOf("m.ftm");
        var state = Sample();
        ModelFile.Save(path, state, new Dictionary<string, string> { ["labels"] = "T-shirt,Trouser", ["arch"] = "simple" });
        var (loaded, meta) = ModelFile.Load(path);
        Assert.Equal(state.Keys, loaded.Keys);
        foreach (var (name, t) in state)
        {
            Assert.Equal(t.ShapeArray(), loaded[name].ShapeArray());
            Assert.Equal(t.DType, loaded[name].DType);
            Assert.Equal(t.ToDoubleArray(), loaded[name].ToDoubleArray());
        }
        Assert.Equal("T-shirt,Trouser", meta["labels"]);
        Assert.Equal("simple", meta["arch"]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }

    [Fact]
    public void Saving_twice_gives_identical_bytes()
    {
        ModelFile.Save(PathOf("a.ftm"), Sample(), new Dictionary<string, string> { ["b"] = "2", ["a"] = "1" });
        ModelFile.Save(PathOf("b.ftm"), Sample(), new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" });
        Assert.Equal(File.ReadAllBytes(PathOf("a.ftm")), File.ReadAllBytes(PathOf("b.ftm")));
    }

    [Fact]
    public void A_truncated_file_is_reported_as_truncated_with_its_path()
    {
        var path = PathOf("t.ftm");
        ModelFile.Save(path, Sample());
        var bytes = File.ReadAllBytes(path);
        foreach (int keep in new[] { 12, 30, bytes.Length - 1 })
        {
            File.WriteAllBytes(path, bytes[..keep]);
            var e = Assert.Throws<ModelFileException>(() => ModelFile.Load(path));
            Assert.Equal(ModelFileError.Truncated, e.Error);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_flipped_byte_is_reported_as_damaged()
    {
        var path = PathOf("d.ftm");
        ModelFile.Save(path, Sample());
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFileException>(() => ModelFile.Load(path));
        Assert.Equal(ModelFileError.Damaged, e.Error);
        Assert.Contains("checksum", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trailing_garbage_is_reported_as_damaged()
    {
        var path = PathOf("g.ftm");
        ModelFile.Save(path, Sample());
        File.AppendAllText(path, "xyz");
        Assert.Equal(ModelFileError.Damaged, Assert.Throws<ModelFileException>(() => ModelFile.Load(path)).Error);
    }

    [Theory]
    [InlineData(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0x50, 0x4B, 0x03, 0x04 })]
    [InlineData(new byte[0])]
    public void A_foreign_file_is_reported_as_not_a_model_file(byte[] content)
    {
        var path = PathOf("foreign.bin");
        File.WriteAllBytes(path, content);
        var e = Assert.Throws<ModelFileException>(() => ModelFile.Load(path));
        Assert.Equal(ModelFileError.NotAModelFile, e.Error);
        Assert.Contains("foreign.bin", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_newer_format_version_is_reported()
    {
        var path = PathOf("v.ftm");
        ModelFile.Save(path, Sample());
        var bytes = File.ReadAllBytes(path);
        bytes[8] = 99;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ModelFileException>(() => ModelFile.Load(path));
        Assert.Equal(ModelFileError.UnsupportedVersion, e.Error);
        Assert.Contains("99", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Overwriting_replaces_the_old_model_whole()
    {
        var path = PathOf("o.ftm");
        ModelFile.Save(path, Sample());
        var small = new StateDict();
        small.Add("w", Tensor.Ones(2));
        ModelFile.Save(path, small);
        Assert.Equal(new[] { "w" }, ModelFile.Load(path).State.Keys);
    }

    [Fact]
    public void Crc32_matches_the_standard_check_value()
    {
        // The CRC-32/ISO-HDLC check value of the ASCII digits "123456789".
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        Assert.Equal(0u, Crc32.Compute([]));
    }
}
