using System.Text.Json;
using MLNet.FastTrain.Engine;
using Xunit;

namespace MLNet.FastTrain.TestUtilities;

/// <summary>
/// Reads the reference values that tests/reference/make_reference.py computed with PyTorch, and compares engine
/// results with them.
/// </summary>
public static class TorchReference
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(RepoPaths.Get("tests", "reference", "torch_reference.json"))));

    /// <summary>The torch version that produced the file.</summary>
    public static string TorchVersion => Document.Value.RootElement.GetProperty("torch_version").GetString()!;

    /// <summary>The names of all cases.</summary>
    public static IEnumerable<string> CaseNames => Document.Value.RootElement.GetProperty("cases").EnumerateObject().Select(p => p.Name);

    /// <summary>One case.</summary>
    public static JsonElement Case(string name) => Document.Value.RootElement.GetProperty("cases").GetProperty(name);

    /// <summary>A tensor stored as {"shape": [...], "data": [...]}.</summary>
    public static Tensor ToTensor(JsonElement e, DType dtype = DType.Float32)
    {
        var shape = e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var data = e.GetProperty("data").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var t = Tensor.FromArray(data, shape);
        return dtype == DType.Float64 ? t : t.To(dtype);
    }

    /// <summary>
    /// Asserts equal shapes and |actual − expected| ≤ rtol·(|expected| + max|expected|·1e-1) per element: relative
    /// to each value, with a floor of a tenth of the tensor's scale for values near zero.
    /// </summary>
    public static void AssertClose(JsonElement expected, Tensor actual, double rtol = 1e-4, string what = "")
    {
        var e = ToTensor(expected, DType.Float64);
        Assert.True(e.Shape.SequenceEqual(actual.Shape), $"{what}: shape {string.Join(",", actual.ShapeArray())} differs from torch's {string.Join(",", e.ShapeArray())}");
        var ev = e.AsDoubleSpan();
        var av = actual.ToDoubleArray();
        double scale = 0;
        foreach (var v in ev) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < ev.Length; i++)
        {
            double tol = rtol * (Math.Abs(ev[i]) + 0.1 * scale);
            Assert.True(Math.Abs(av[i] - ev[i]) <= tol, $"{what}[{i}]: engine {av[i]:R}, torch {ev[i]:R}, tolerance {tol:E2}");
        }
    }
}
