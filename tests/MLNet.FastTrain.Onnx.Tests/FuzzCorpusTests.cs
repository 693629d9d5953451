using MLNet.FastTrain.Fuzzing;
using MLNet.FastTrain.TestUtilities;
using Xunit;

namespace MLNet.FastTrain.Onnx.Tests;

/// <summary>
/// Every input kept in fuzz/corpus (the seeds and what campaigns of scripts/fuzz.sh found worth keeping) goes
/// through its parser as the fuzzer ran it: read, or refused with the parser's own typed error.
/// </summary>
public sealed class FuzzCorpusTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("fuzz-corpus-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    public static TheoryData<string> Targets() => new(FuzzTargets.Names);

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_kept_input_is_read_or_refused_with_the_parsers_own_error(string target)
    {
        var files = Directory.GetFiles(RepoPaths.Get("fuzz", "corpus", target));
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var e = Record.Exception(() => FuzzTargets.Run(target, File.ReadAllBytes(file), _scratch));
            Assert.True(e is null, $"{Path.GetFileName(file)}: {e}");
        }
    }

    [Fact]
    public void A_foreign_exception_is_not_taken_for_a_refusal()
    {
        Assert.False(FuzzTargets.IsRefusal("png", new InvalidOperationException("a decoder bug")));
        Assert.False(FuzzTargets.IsRefusal("ftm", new InsufficientMemoryException()));
        // A typed error of another parser is not a refusal of this one either.
        Assert.False(FuzzTargets.IsRefusal("onnx", new Engine.Serialization.ModelFileException("m.ftm", Engine.Serialization.ModelFileError.Damaged, "x")));
        Assert.True(FuzzTargets.IsRefusal("ftm", new Engine.Serialization.ModelFileException("m.ftm", Engine.Serialization.ModelFileError.Damaged, "x")));
    }
}
