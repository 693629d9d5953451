using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Onnx.Proto;

namespace MLNet.FastTrain.Onnx;

/// <summary>
/// Reads an ONNX model into a trainable module with its weights. Graphs of Conv, BatchNormalization, Relu,
/// LeakyRelu, Sigmoid, Tanh, MaxPool, AveragePool, GlobalAveragePool, Gemm, MatMul, Add, Sub, Mul, Div, Flatten,
/// Reshape (to [batch, -1]), Softmax, Identity, Dropout and Constant are understood. A leading Sub/Div by per-channel
/// constants becomes the input normalisation and a final Softmax is noted, so a model this project exported comes
/// back whole. When the weights and wiring are those of a model-zoo network (a torchvision-layout ResNet-18/34 exported
/// by torch.onnx.export, say), the zoo network itself is returned, with its default layer groups.
/// </summary>
public static class OnnxImporter
{
    private static readonly HashSet<string> Supported =
    [
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool",
        "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Flatten", "Reshape", "Softmax", "Identity", "Dropout", "Constant",
    ];

    /// <summary>Reads an ONNX file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="OnnxFormatException">The file is not a readable ONNX model.</exception>
    /// <exception cref="UnsupportedOnnxModelException">It uses operators or attributes with no form here (all are listed).</exception>
    public static OnnxModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"The ONNX model '{path}' does not exist.", path);
        OnnxModelProto proto;
        try
        {
            proto = OnnxSerializer.Read(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidDataException)
        {
            throw new OnnxFormatException(path, e.Message, e);
        }
        return Import(proto, path);
    }

    /// <summary>Builds the module from a parsed model; <paramref name="source"/> names it in messages.</summary>
    public static OnnxModel Import(OnnxModelProto proto, string source = "(in memory)")
    {
        ArgumentNullException.ThrowIfNull(proto);
        var graph = proto.Graph;
        if (graph.Nodes.Count == 0) throw new OnnxFormatException(source, "the graph has no nodes (is this an ONNX model file?).");
        if (!proto.OpsetImports.TryGetValue("", out long opset)) throw new OnnxFormatException(source, "it imports no version of the default (ai.onnx) operator set.");
        var consts = new Dictionary<string, OnnxTensorProto>(StringComparer.Ordinal);
        foreach (var t in graph.Initializers)
            if (!consts.TryAdd(t.Name, t)) throw new OnnxFormatException(source, $"two initializers are named '{t.Name}'.");
        var inputs = graph.Inputs.Where(v => !consts.ContainsKey(v.Name)).ToList();
        if (inputs.Count != 1 || graph.Outputs.Count != 1)
            throw new UnsupportedOnnxModelException(source, [$"the graph has {inputs.Count} inputs and {graph.Outputs.Count} outputs; one image input and one output are supported"]);

        foreach (var node in graph.Nodes.Where(n => n.OpType == "Constant" && n.Outputs.Count == 1))
        {
            var value = node.Attributes.FirstOrDefault(a => a.Name == "value")?.T;
            if (value is not null) consts[node.Outputs[0]] = value;
        }

        var problems = new List<string>();
        foreach (var node in graph.Nodes) Check(node, consts, opset, problems);
        if (problems.Count > 0) throw new UnsupportedOnnxModelException(source, problems);

        var nodes = graph.Nodes.Where(n => n.OpType != "Constant").ToList();
        string input = inputs[0].Name, output = graph.Outputs[0].Name;
        var normalization = StripNormalization(nodes, consts, ref input);
        bool softmax = StripSoftmax(nodes, ref output);

        var builder = new GraphBuilder(consts, opset);
        try
        {
            foreach (var node in nodes) builder.Add(node);
        }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException)
        {
            // Shapes that contradict each other or name a missing tensor (an empty batch norm, a weight of the wrong size).
            throw new OnnxFormatException(source, $"its graph does not build: {e.Message}", e);
        }
        var graphModule = new OnnxGraphModule(input, output, builder.Steps, builder.Root.NamedChildren());
        var dims0 = inputs[0].Dims;
        if (builder.AveragePools.Count > 0 && dims0.Count == 4 && dims0[1] is long pc && dims0[2] is long ph && dims0[3] is long pw)
        {
            // The probe's size comes from the file: bounded before it is allocated (4,096² pixels of 4 channels at most).
            if (pc is < 1 or > 4 || ph is < 1 or > 4096 || pw is < 1 or > 4096)
                throw new UnsupportedOnnxModelException(source, [$"the declared input size {pc}×{ph}×{pw} is outside 1–4 channels of up to 4096×4096 pixels"]);
            // One forward pass at the declared size shows which average pools cover their whole input.
            graphModule.Eval();
            using (GradRecorder.NoGrad()) graphModule.Forward(Tensor.Zeros(1, (int)pc, (int)ph, (int)pw));
            graphModule.Train();
            foreach (var pool in builder.AveragePools) pool.Settle();
        }

        var meta = proto.Metadata.GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Last().Value);
        var dims = inputs[0].Dims;
        int channels = dims.Count == 4 && dims[1] is long c ? (int)c : builder.FirstConvInChannels ?? 3;
        int? height = dims.Count == 4 && dims[2] is long h ? (int)h : null;
        int? width = dims.Count == 4 && dims[3] is long w ? (int)w : null;
        var (network, architecture) = PromoteToZoo(graphModule, channels, builder.LastLinearOutFeatures, height, width);
        if (builder.LastLinearOutFeatures is null && ResNetMatcher.TryMatch(nodes, consts, input, output) is var (body, bodyArchitecture)
            && SameFunction(graphModule, body, [2, channels, Math.Min(height ?? 64, 64), Math.Min(width ?? 64, 64)]))
            (network, architecture) = (body, bodyArchitecture);

        IReadOnlyList<string>? classes = null;
        if (meta.TryGetValue("labels", out var labels))
        {
            try { classes = JsonSerializer.Deserialize<string[]>(labels); }
            catch (JsonException e) { throw new OnnxFormatException(source, $"its 'labels' metadata is not a JSON array of strings ({e.Message}).", e); }
        }
        (int, int, int)? trainedSize = null;
        if (meta.TryGetValue("fasttrain.input", out var size))
        {
            var parts = size.Split(',');
            if (parts.Length == 3 && parts.All(p => int.TryParse(p, CultureInfo.InvariantCulture, out _)))
                trainedSize = (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture));
        }
        return new OnnxModel(network, architecture, classes, normalization, softmax, (channels, height, width), trainedSize, builder.LastLinearOutFeatures, opset, proto.ProducerName);
    }

    private static void Check(OnnxNodeProto node, Dictionary<string, OnnxTensorProto> consts, long opset, List<string> problems)
    {
        string where = $"node '{node.DisplayName}'";
        if (node.Domain.Length > 0 && node.Domain != "ai.onnx") { problems.Add($"{where}: operator {node.Domain}.{node.OpType} (custom domain)"); return; }
        if (!Supported.Contains(node.OpType)) { problems.Add($"{where}: operator {node.OpType}"); return; }
        int needed = node.OpType switch
        {
            "Constant" => 0,
            "Add" or "Sub" or "Mul" or "Div" or "MatMul" or "Gemm" or "Conv" or "Reshape" => 2,
            "BatchNormalization" => 5,
            _ => 1,
        };
        if (node.Outputs.Count == 0 || node.Outputs[0].Length == 0 || needed > 0 && (node.Inputs.Count == 0 || node.Inputs[0].Length == 0))
        {
            problems.Add($"{where}: {node.OpType} without an input or an output");
            return;
        }
        if (node.Inputs.Count < needed)
        {
            problems.Add($"{where}: {node.OpType} with {node.Inputs.Count} inputs, fewer than its {needed}");
            return;
        }
        var known = new HashSet<string>();
        void Need(bool ok, string what) { if (!ok) problems.Add($"{where}: {node.OpType} {what}"); }
        bool IsConst(int i) => i < node.Inputs.Count && consts.ContainsKey(node.Inputs[i]);
        long Int(string name, long fallback) { known.Add(name); return node.Attributes.FirstOrDefault(a => a.Name == name)?.I ?? fallback; }
        List<long>? Ints(string name) { known.Add(name); return node.Attributes.FirstOrDefault(a => a.Name == name)?.Ints; }
        string Str(string name, string fallback) { known.Add(name); var a = node.Attributes.FirstOrDefault(x => x.Name == name); return a is null ? fallback : a.S; }
        void Known(params string[] names) { foreach (var n in names) known.Add(n); }

        switch (node.OpType)
        {
            case "Conv":
                Need(IsConst(1), "with weights that are not constants");
                Need(node.Inputs.Count < 3 || node.Inputs[2].Length == 0 || IsConst(2), "with a bias that is not a constant");
                Need(IsConst(1) && consts[node.Inputs[1]].Dims.Length == 4, "that is not two-dimensional");
                CheckPads(Ints("pads"));
                CheckAutoPad(Str("auto_pad", "NOTSET"));
                Known("kernel_shape", "strides", "dilations", "group");
                break;
            case "BatchNormalization":
                Need(Enumerable.Range(1, 4).All(IsConst), "with scale, bias, mean or variance that are not constants");
                Need(Int("training_mode", 0) == 0, "in training mode (training_mode=1)");
                Need(node.Outputs.Count(o => o.Length > 0) == 1, "with running-statistics outputs");
                Known("epsilon", "momentum", "spatial");
                break;
            case "MaxPool":
            case "AveragePool":
                Need(Ints("kernel_shape")?.Count == 2, "that is not two-dimensional");
                Need(Int("ceil_mode", 0) == 0, "with ceil_mode=1");
                Need(Ints("dilations")?.All(d => d == 1) ?? true, "with dilations other than 1");
                Need(node.Outputs.Count(o => o.Length > 0) == 1, "with an indices output");
                CheckPads(Ints("pads"));
                CheckAutoPad(Str("auto_pad", "NOTSET"));
                Known("strides", "storage_order", "count_include_pad");
                break;
            case "Gemm":
                Need(IsConst(1), "with a B that is not a constant");
                Need(node.Inputs.Count < 3 || node.Inputs[2].Length == 0 || IsConst(2), "with a C that is not a constant");
                Need(Int("transA", 0) == 0, "with transA=1");
                Known("transB", "alpha", "beta");
                break;
            case "MatMul":
                Need(IsConst(1) && consts[node.Inputs[1]].Dims.Length == 2, "whose second input is not a constant matrix");
                break;
            case "Reshape":
                {
                    var shape = IsConst(1) ? consts[node.Inputs[1]].Int64Data : null;
                    Need(shape is { Length: 2 } && shape[1] == -1 && shape[0] is 0 or -1,
                        $"to shape [{string.Join(", ", shape ?? [])}] (only flattening to [batch, -1] is supported)");
                    Known("allowzero");
                    break;
                }
            case "Flatten":
                Need(Int("axis", 1) >= 1, "with axis below 1");
                break;
            case "LeakyRelu": Known("alpha"); break;
            case "Softmax": Known("axis"); break;
            case "Dropout": Known("ratio", "seed"); break;
            case "Constant":
                Need(node.Attributes.Any(a => a.Name == "value" && a.T is not null), "with a value other than a tensor");
                Known("value");
                break;
            case "Add" or "Sub" or "Mul" or "Div":
                Need(node.Inputs.All(i => !consts.TryGetValue(i, out var c) || c.DataType is OnnxDataType.Float or OnnxDataType.Double), "with non-float constants");
                break;
        }
        foreach (var a in node.Attributes.Where(a => !known.Contains(a.Name)))
            problems.Add($"{where}: {node.OpType} attribute '{a.Name}'");
        if (opset < 7) problems.Add($"{where}: operator set {opset} is older than 7");

        // Less padding at the end than at the start (CNTK writes [3, 3, 2, 2]) is the symmetric window cropped; more is not.
        void CheckPads(List<long>? pads) =>
            Need(pads is null || pads.Count == 0 || (pads.Count == 4 && pads[2] <= pads[0] && pads[3] <= pads[1] && pads.All(p => p >= 0)),
                $"with padding [{string.Join(", ", pads ?? [])}] larger at the end than at the start");
        void CheckAutoPad(string autoPad) => Need(autoPad is "NOTSET" or "VALID" or "", $"with auto_pad={autoPad}");
    }

    /// <summary>A Sub then Div by [1, C, 1, 1] constants right after the input becomes the normalisation.</summary>
    private static (float[] Mean, float[] Std)? StripNormalization(List<OnnxNodeProto> nodes, Dictionary<string, OnnxTensorProto> consts, ref string input)
    {
        var first = input;
        var readers = nodes.Where(n => n.Inputs.Contains(first)).ToList();
        if (readers is not [{ OpType: "Sub" } sub] || sub.Inputs[0] != first || !IsChannelConstant(sub.Inputs[1])) return null;
        var divReaders = nodes.Where(n => n.Inputs.Contains(sub.Outputs[0])).ToList();
        if (divReaders is not [{ OpType: "Div" } div] || div.Inputs[0] != sub.Outputs[0] || !IsChannelConstant(div.Inputs[1])) return null;
        nodes.Remove(sub);
        nodes.Remove(div);
        input = div.Outputs[0];
        return (consts[sub.Inputs[1]].FloatData, consts[div.Inputs[1]].FloatData);

        bool IsChannelConstant(string name) =>
            consts.TryGetValue(name, out var t) && t.Dims.Length == 4 && t.Dims[0] == 1 && t.Dims[2] == 1 && t.Dims[3] == 1 && t.FloatData.Length == t.Dims[1];
    }

    /// <summary>A Softmax producing the graph's output is left out of the module (scoring applies softmax itself).</summary>
    private static bool StripSoftmax(List<OnnxNodeProto> nodes, ref string output)
    {
        var last = output;
        var producer = nodes.LastOrDefault(n => n.Outputs.Contains(last));
        if (producer is not { OpType: "Softmax" }) return false;
        var axis = producer.Attributes.FirstOrDefault(a => a.Name == "axis")?.I ?? -1;
        if (axis is not (1 or -1)) return false;
        nodes.Remove(producer);
        output = producer.Inputs[0];
        return true;
    }

    /// <summary>
    /// Replaces the graph by the zoo network with the same state-dict names and shapes when both compute the same
    /// function on a random input; otherwise keeps the graph.
    /// </summary>
    private static (Module Network, string Architecture) PromoteToZoo(OnnxGraphModule graph, int channels, int? classes, int? height, int? width)
    {
        if (classes is not int k) return (graph, OnnxModel.GraphArchitecture);
        var state = graph.StateDict();
        foreach (var arch in TrainedModel.Architectures)
        {
            var candidate = TrainedModel.CreateNetwork(arch, channels, k);
            var theirs = candidate.StateDict();
            if (theirs.Count != state.Count || theirs.Any(kv => !state.TryGetValue(kv.Key, out var t) || !t.Shape.SequenceEqual(kv.Value.Shape))) continue;
            candidate.LoadStateDict(state);
            int h = height ?? (arch == "simple" ? 28 : 64), w = width ?? (arch == "simple" ? 28 : 64);
            if (SameFunction(graph, candidate, [2, channels, h, w])) return (candidate, arch);
        }
        return (graph, OnnxModel.GraphArchitecture);
    }

    private static bool SameFunction(Module a, Module b, int[] shape)
    {
        a.Eval();
        b.Eval();
        try
        {
            using var noGrad = GradRecorder.NoGrad();
            var x = Tensor.Uniform(shape, generator: new Generator(12345));
            var ya = a.Forward(x).ToArray();
            var yb = b.Forward(x).ToArray();
            if (ya.Length != yb.Length) return false;
            double scale = 1 + ya.Max(v => Math.Abs(v));
            return ya.Zip(yb).All(p => Math.Abs(p.First - p.Second) <= 1e-4 * scale);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
        finally
        {
            a.Train();
            b.Train();
        }
    }

    /// <summary>Turns nodes into steps and weighted nodes into named child modules.</summary>
    private sealed class GraphBuilder(Dictionary<string, OnnxTensorProto> consts, long opset)
    {
        private readonly Dictionary<string, string> _alias = new(StringComparer.Ordinal);
        private readonly HashSet<string> _usedNames = [];

        public ModuleContainer Root { get; } = new();

        public List<OnnxGraphModule.Step> Steps { get; } = [];

        public int? FirstConvInChannels { get; private set; }

        public int? LastLinearOutFeatures { get; private set; }

        public void Add(OnnxNodeProto node)
        {
            var inputs = node.Inputs.Where(i => i.Length > 0).Select(Resolve).ToList();
            string output = node.Outputs[0];
            switch (node.OpType)
            {
                case "Identity" or "Dropout":
                    _alias[output] = inputs[0];
                    return;
                case "Conv": AddConv(node, inputs, output); return;
                case "BatchNormalization": AddBatchNorm(node, inputs, output); return;
                case "Gemm": AddGemm(node, inputs, output); return;
                case "MatMul":
                    {
                        var b = consts[inputs[1]];
                        int inF = (int)b.Dims[0], outF = (int)b.Dims[1];
                        var linear = new Linear(inF, outF, bias: false);
                        Transpose(b.FloatData, inF, outF, linear.Weight.AsSpan());
                        Module(node, [inputs[1]], linear, inputs[0], output);
                        LastLinearOutFeatures = outF;
                        return;
                    }
            }
            var attrs = node.Attributes.ToDictionary(a => a.Name);
            long Int(string name, long fallback) => attrs.TryGetValue(name, out var a) ? a.I : fallback;
            (int, int) Pair(string name, int fallback) => AttributePair(attrs, name, fallback);
            Func<Tensor[], Tensor> run;
            switch (node.OpType)
            {
                case "Relu": run = x => Functional.Relu(x[0]); break;
                case "LeakyRelu":
                    {
                        double alpha = attrs.TryGetValue("alpha", out var a) ? a.F : 0.01;
                        run = x => Functional.LeakyRelu(x[0], alpha);
                        break;
                    }
                case "Sigmoid": run = x => Functional.Sigmoid(x[0]); break;
                case "Tanh": run = x => Functional.Tanh(x[0]); break;
                case "MaxPool":
                    {
                        var (k, s, p, e) = (Pair("kernel_shape", 1), Pair("strides", 1), Pair("pads", 0), EndPads(attrs));
                        run = x => Functional.CropToEndPadding(Functional.MaxPool2d(x[0], k, s, p), x[0], k, s, (1, 1), p, e);
                        break;
                    }
                case "AveragePool":
                    {
                        var (k, s, p) = (Pair("kernel_shape", 1), Pair("strides", 1), Pair("pads", 0));
                        bool includePad = Int("count_include_pad", 0) != 0;
                        // A window as large as the whole feature map at the declared input size (CNTK's 7 × 7 over
                        // layer4's output at 224) is global pooling: made adaptive, other sizes work too.
                        var pool = new AveragePoolStep(k, s, p, includePad);
                        AveragePools.Add(pool);
                        run = x => pool.Run(x[0]);
                        break;
                    }
                case "GlobalAveragePool": run = x => Functional.AdaptiveAvgPool2d(x[0], (1, 1)); break;
                case "Flatten":
                    {
                        int axis = (int)Int("axis", 1);
                        run = x => Functional.Flatten(x[0], axis);
                        break;
                    }
                case "Reshape":
                    inputs = [inputs[0]];
                    run = x => Functional.Flatten(x[0], 1);
                    break;
                case "Softmax":
                    {
                        int axis = (int)Int("axis", opset >= 13 ? -1 : 1);
                        run = x => Functional.Softmax(x[0], axis);
                        break;
                    }
                case "Add" or "Sub" or "Mul" or "Div":
                    {
                        var op = node.OpType;
                        // Constant operands are captured as tensors; the step reads only the computed ones.
                        var fixedArgs = inputs.Select(i => consts.TryGetValue(i, out var t) ? ToTensor(t) : null).ToArray();
                        var computed = inputs.Where(i => !consts.ContainsKey(i)).ToList();
                        inputs = computed;
                        run = x =>
                        {
                            int next = 0;
                            var a = fixedArgs[0] ?? x[next++];
                            var b = fixedArgs[1] ?? x[next];
                            return op switch
                            {
                                "Add" => Functional.Add(a, b),
                                "Sub" => Functional.Sub(a, b),
                                "Mul" => Functional.Mul(a, b),
                                _ => Functional.Div(a, b),
                            };
                        };
                        break;
                    }
                default:
                    throw new InvalidOperationException($"No step for operator {node.OpType} (node '{node.DisplayName}').");
            }
            Steps.Add(new(node.DisplayName, [.. inputs], output, run));
        }

        private void AddConv(OnnxNodeProto node, List<string> inputs, string output)
        {
            var w = consts[inputs[1]];
            var attrs = node.Attributes.ToDictionary(a => a.Name);
            (int, int) Pair(string name, int fallback) => AttributePair(attrs, name, fallback);
            int groups = attrs.TryGetValue("group", out var g) ? (int)g.I : 1;
            int outC = (int)w.Dims[0], inC = (int)w.Dims[1] * groups;
            bool hasBias = inputs.Count > 2;
            var conv = new Conv2d(inC, outC, ((int)w.Dims[2], (int)w.Dims[3]), Pair("strides", 1), Pair("pads", 0), Pair("dilations", 1), groups, hasBias)
            {
                PaddingEnd = EndPads(attrs),
            };
            w.FloatData.CopyTo(conv.Weight.AsSpan());
            if (hasBias) consts[inputs[2]].FloatData.CopyTo(conv.Bias!.AsSpan());
            FirstConvInChannels ??= inC;
            Module(node, inputs.Skip(1), conv, inputs[0], output);
        }

        private void AddBatchNorm(OnnxNodeProto node, List<string> inputs, string output)
        {
            var eps = node.Attributes.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            var scale = consts[inputs[1]];
            var bn = new BatchNorm2d(scale.FloatData.Length, eps);
            scale.FloatData.CopyTo(bn.Weight!.AsSpan());
            consts[inputs[2]].FloatData.CopyTo(bn.Bias!.AsSpan());
            consts[inputs[3]].FloatData.CopyTo(bn.RunningMean.AsSpan());
            consts[inputs[4]].FloatData.CopyTo(bn.RunningVar.AsSpan());
            Module(node, inputs.Skip(1), bn, inputs[0], output);
        }

        private void AddGemm(OnnxNodeProto node, List<string> inputs, string output)
        {
            var attrs = node.Attributes.ToDictionary(a => a.Name);
            bool transB = attrs.TryGetValue("transB", out var t) && t.I != 0;
            float alpha = attrs.TryGetValue("alpha", out var al) ? al.F : 1f, beta = attrs.TryGetValue("beta", out var be) ? be.F : 1f;
            var b = consts[inputs[1]];
            int outF = (int)(transB ? b.Dims[0] : b.Dims[1]), inF = (int)(transB ? b.Dims[1] : b.Dims[0]);
            bool hasBias = inputs.Count > 2;
            var linear = new Linear(inF, outF, hasBias);
            var weight = linear.Weight.AsSpan();
            if (transB) b.FloatData.CopyTo(weight); else Transpose(b.FloatData, inF, outF, weight);
            if (alpha != 1f) for (int i = 0; i < weight.Length; i++) weight[i] *= alpha;
            if (hasBias)
            {
                var c = consts[inputs[2]].FloatData;
                var bias = linear.Bias!.AsSpan();
                for (int i = 0; i < outF; i++) bias[i] = beta * c[c.Length == 1 ? 0 : i];
            }
            LastLinearOutFeatures = outF;
            Module(node, inputs.Skip(1), linear, inputs[0], output);
        }

        /// <summary>Registers a weighted node's module under the name its weights carry, and adds its step.</summary>
        private void Module(OnnxNodeProto node, IEnumerable<string> weightNames, Module module, string input, string output)
        {
            var path = ModulePath(node, weightNames.FirstOrDefault());
            var parts = path.Split('.');
            var parent = Root;
            for (int i = 0; i < parts.Length - 1; i++) parent = (ModuleContainer)parent.GetOrAdd(parts[i], () => new ModuleContainer());
            parent.GetOrAdd(parts[^1], () => module);
            Steps.Add(new(node.DisplayName, [input], output, x => module.Forward(x[0])));
        }

        /// <summary>
        /// "layer1.0.conv1" from a weight named "layer1.0.conv1.weight" (torch's export keeps state-dict names);
        /// otherwise a name made from the node's name or operator.
        /// </summary>
        private string ModulePath(OnnxNodeProto node, string? weight)
        {
            string path;
            if (weight is not null && weight.EndsWith(".weight", StringComparison.Ordinal) && !weight.Contains(':', StringComparison.Ordinal)
                && weight[..^".weight".Length].Split('.').All(IsIdentifier))
                path = weight[..^".weight".Length];
            else
            {
                var raw = node.Name.Length > 0 ? node.Name : node.OpType;
                path = new string(raw.Select(ch => char.IsLetterOrDigit(ch) ? ch : '_').ToArray()).Trim('_');
                if (path.Length == 0) path = node.OpType;
            }
            var unique = path;
            for (int i = 1; !_usedNames.Add(unique) || IsPrefixOfUsed(unique); i++) unique = $"{path}_{i}";
            return unique;
        }

        private bool IsPrefixOfUsed(string path) => _usedNames.Any(u => u != path && (u.StartsWith(path + ".", StringComparison.Ordinal) || path.StartsWith(u + ".", StringComparison.Ordinal)));

        private static bool IsIdentifier(string part) => part.Length > 0 && part.All(ch => char.IsLetterOrDigit(ch) || ch == '_');

        /// <summary>A two-value integer attribute (kernel_shape, strides, the first two pads, dilations), or the fallback twice.</summary>
        /// <summary>The pooling steps that average, whose windows the probe may find global.</summary>
        public List<AveragePoolStep> AveragePools { get; } = [];

        /// <summary>The end padding of ONNX pads [b_h, b_w, e_h, e_w] (the start's when absent).</summary>
        private static (int, int) EndPads(Dictionary<string, OnnxAttributeProto> attrs) =>
            attrs.TryGetValue("pads", out var a) && a.Ints.Count == 4 ? ((int)a.Ints[2], (int)a.Ints[3]) : AttributePair(attrs, "pads", 0);

        private static (int, int) AttributePair(Dictionary<string, OnnxAttributeProto> attrs, string name, int fallback) =>
            attrs.TryGetValue(name, out var a) && a.Ints.Count >= 2 ? ((int)a.Ints[0], (int)a.Ints[1]) : (fallback, fallback);

        private string Resolve(string name) => _alias.TryGetValue(name, out var a) ? Resolve(a) : name;

        private static Tensor ToTensor(OnnxTensorProto t) =>
            Tensor.FromArray((float[])t.FloatData.Clone(), t.Dims.Select(d => (int)d).ToArray());

        private static void Transpose(float[] source, int rows, int cols, Span<float> target)
        {
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) target[c * rows + r] = source[r * cols + c];
        }
    }
}

/// <summary>An AveragePool node; once the probe has seen its window cover the whole feature map, it pools adaptively.</summary>
internal sealed class AveragePoolStep((int H, int W) kernel, (int H, int W) stride, (int H, int W) padding, bool includePad)
{
    public bool Global { get; private set; }

    public (int H, int W)? SeenInput { get; private set; }

    public Tensor Run(Tensor x)
    {
        SeenInput ??= (x.Size(2), x.Size(3));
        return Global ? Functional.AdaptiveAvgPool2d(x, (1, 1)) : Functional.AvgPool2d(x, kernel, stride, padding, includePad);
    }

    /// <summary>After the probe: global when the window covered the whole map, unpadded, in one step.</summary>
    public void Settle() => Global = SeenInput == kernel && padding == (0, 0);
}
