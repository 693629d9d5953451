using System.Text.Json;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.TestUtilities;
using Xunit;
using F = MLNet.FastTrain.Engine.Functional;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>
/// Forward values, gradients and optimizer trajectories in float32 against PyTorch's (computed in float64 by
/// tests/reference/make_reference.py), within 1e-4 relative.
/// </summary>
[Trait("Category", "Kernel")]
public class TorchReferenceTests
{
    public static TheoryData<string> OperationCases => new(TorchReference.CaseNames.Where(n =>
        !n.StartsWith("optim_", StringComparison.Ordinal) && !n.StartsWith("schedule_", StringComparison.Ordinal)));

    public static TheoryData<string> OptimizerCases => new(TorchReference.CaseNames.Where(n => n.StartsWith("optim_", StringComparison.Ordinal)));

    [Fact]
    public void Reference_file_records_its_torch_version()
    {
        Assert.StartsWith("1.", TorchReference.TorchVersion, StringComparison.Ordinal);
        Assert.True(TorchReference.CaseNames.Count() >= 20);
    }

    [Theory]
    [MemberData(nameof(OperationCases))]
    public void Operation_matches_torch(string name)
    {
        var c = TorchReference.Case(name);
        var inputs = c.GetProperty("inputs").EnumerateObject().ToDictionary(p => p.Name, p =>
        {
            var t = TorchReference.ToTensor(p.Value);
            t.RequiresGrad = true;
            return t;
        });
        Tensor? runningMean = null, runningVar = null;
        if (c.TryGetProperty("running_before", out var rb))
        {
            runningMean = TorchReference.ToTensor(rb.GetProperty("mean"));
            runningVar = TorchReference.ToTensor(rb.GetProperty("var"));
        }

        var y = Run(name, c, inputs, runningMean, runningVar);
        TorchReference.AssertClose(c.GetProperty("output"), y, what: name + " output");
        y.Backward(TorchReference.ToTensor(c.GetProperty("upstream")).Reshape(y.ShapeArray()));
        foreach (var g in c.GetProperty("grads").EnumerateObject())
            TorchReference.AssertClose(g.Value, inputs[g.Name].Grad!, what: $"{name} d{g.Name}");
        if (c.TryGetProperty("running_after", out var ra))
        {
            TorchReference.AssertClose(ra.GetProperty("mean"), runningMean!, what: name + " running_mean");
            TorchReference.AssertClose(ra.GetProperty("var"), runningVar!, what: name + " running_var");
        }
    }

    private static Tensor Run(string name, JsonElement c, Dictionary<string, Tensor> x, Tensor? rm, Tensor? rv)
    {
        int Cfg(string key) => c.GetProperty("config").GetProperty(key).GetInt32();
        if (name.StartsWith("conv2d", StringComparison.Ordinal))
        {
            int s = Cfg("stride"), p = Cfg("padding"), d = Cfg("dilation");
            return F.Conv2d(x["x"], x["weight"], x.GetValueOrDefault("bias"), (s, s), (p, p), (d, d), Cfg("groups"));
        }
        if (name.StartsWith("cross_entropy", StringComparison.Ordinal))
        {
            var targets = c.GetProperty("targets").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            var cfg = c.GetProperty("config");
            Tensor? weight = cfg.GetProperty("weight").ValueKind == JsonValueKind.Null
                ? null
                : Tensor.FromArray(cfg.GetProperty("weight").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray());
            return F.CrossEntropy(x["logits"], targets, weight, cfg.GetProperty("label_smoothing").GetDouble());
        }
        return name switch
        {
            "linear" => F.Linear(x["x"], x["weight"], x["bias"]),
            "batch_norm2d_train" => F.BatchNorm2d(x["x"], rm, rv, x["weight"], x["bias"], training: true),
            "batch_norm2d_eval" => F.BatchNorm2d(x["x"], rm, rv, x["weight"], x["bias"], training: false),
            "max_pool2d" => F.MaxPool2d(x["x"], (Cfg("kernel"), Cfg("kernel")), (Cfg("stride"), Cfg("stride")), (Cfg("padding"), Cfg("padding"))),
            "avg_pool2d" => F.AvgPool2d(x["x"], (Cfg("kernel"), Cfg("kernel")), (Cfg("stride"), Cfg("stride")), (Cfg("padding"), Cfg("padding"))),
            "avg_pool2d_exclude_pad" => F.AvgPool2d(x["x"], (Cfg("kernel"), Cfg("kernel")), (Cfg("stride"), Cfg("stride")), (Cfg("padding"), Cfg("padding")), countIncludePad: false),
            "adaptive_avg_pool2d" => F.AdaptiveAvgPool2d(x["x"], (Cfg("out_h"), Cfg("out_w"))),
            "gelu" => F.Gelu(x["x"]),
            "log_softmax" => F.LogSoftmax(x["x"], 1),
            "softmax" => F.Softmax(x["x"], 1),
            _ => throw new InvalidOperationException($"No runner for reference case '{name}'."),
        };
    }

    [Theory]
    [MemberData(nameof(OptimizerCases))]
    public void Ten_optimizer_steps_match_torch(string name)
    {
        var c = TorchReference.Case(name);
        var x = TorchReference.ToTensor(c.GetProperty("x"));
        var y = TorchReference.ToTensor(c.GetProperty("y"));
        var w = new Parameter(TorchReference.ToTensor(c.GetProperty("weight0")));
        var b = new Parameter(TorchReference.ToTensor(c.GetProperty("bias0")));
        var h = c.GetProperty("hyper");
        double lr = h.GetProperty("lr").GetDouble(), wd = h.GetProperty("weight_decay").GetDouble();
        Optimizer opt = name switch
        {
            "optim_sgd_momentum" or "optim_sgd_nesterov" => new Sgd([w, b], lr, h.GetProperty("momentum").GetDouble(), wd, h.GetProperty("nesterov").GetBoolean()),
            "optim_adam" => new Adam([w, b], lr, weightDecay: wd),
            "optim_adamw" => new AdamW([w, b], lr, weightDecay: wd),
            _ => throw new InvalidOperationException(name),
        };
        int step = 0;
        foreach (var expected in c.GetProperty("steps").EnumerateArray())
        {
            opt.ZeroGrad();
            F.MseLoss(F.Linear(x, w, b), y).Backward();
            opt.Step();
            step++;
            TorchReference.AssertClose(expected.GetProperty("weight"), w, what: $"{name} step {step} weight");
            TorchReference.AssertClose(expected.GetProperty("bias"), b, what: $"{name} step {step} bias");
        }
        Assert.Equal(10, step);
    }
}
