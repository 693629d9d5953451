using System.Globalization;
using System.Runtime.InteropServices;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Engines;
using MLNet.FastTrain.Vision.Datasets;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using Managed = MLNet.FastTrain.Engine;

namespace MLNet.FastTrain.TorchSharp;

/// <summary>The number format the torch engine computes in.</summary>
public enum TorchPrecision
{
    /// <summary>IEEE single precision throughout (the default).</summary>
    Float32,

    /// <summary>
    /// Mixed: convolutions and linear layers compute in bfloat16 on bfloat16 copies of their weights; batch norm,
    /// the loss and the optimizer stay in float32, and the optimizer updates float32 master weights, which the
    /// bfloat16 copies follow after every step. Faster where the CPU has bfloat16 matrix units (AMX) or on a GPU.
    /// </summary>
    BFloat16,
}

/// <summary>
/// The torch engine: runs a described model on libtorch through TorchSharp, on the CPU or a CUDA device, with
/// <c>torch.optim</c> following the description's parameter groups (docs/design.md §9).
/// </summary>
public sealed class TorchEngine : TrainingEngine
{
    private readonly nn.Module<Tensor, Tensor> _net;
    private readonly Device _device;
    private readonly Dictionary<string, Tensor> _state;          // the network's parameters and buffers by name
    private readonly List<string> _stateNames;                    // the description's names, in its order
    private readonly List<(Managed.Modules.Parameter Described, Parameter Torch)> _parameters = [];
    private readonly List<(Managed.Modules.BatchNorm2d Described, nn.Module Torch)> _norms = [];
    private optim.Optimizer _optimizer = null!;
    private List<List<Parameter>> _groups = [];
    private Tensor? _loss;
    private int _batchSize;
    private bool[] _trainable = [];          // the trainability last copied into libtorch, per parameter
    private bool[] _frozenStatistics = [];   // the batch norms last put in evaluation mode during training
    private bool? _mode;                     // the mode last applied to the network
    private readonly List<(Parameter Master, Parameter Compute)> _lowered = []; // bfloat16: float32 masters and their bfloat16 copies

    /// <summary>Builds the engine: the TorchSharp network with the description's weights, on <paramref name="device"/>.</summary>
    /// <param name="model">The description.</param>
    /// <param name="optimizer">The described optimizer (AdamW, Adam or SGD).</param>
    /// <param name="device">"cpu", "cuda" or "cuda:N".</param>
    /// <param name="threads">libtorch's intra-op threads, or null for libtorch's default.</param>
    /// <param name="precision">The number format of the convolutions and linear layers (<see cref="TorchPrecision"/>).</param>
    /// <exception cref="TorchEngineException">libtorch cannot load, the device is not there, or a layer has no counterpart.</exception>
    public TorchEngine(Managed.Modules.Module model, Managed.Optimizers.Optimizer optimizer, string device = "cpu", int? threads = null,
        TorchPrecision precision = TorchPrecision.Float32) : base(model, optimizer)
    {
        TorchRuntime.EnsureLoaded(threads);
        _device = ResolveDevice(device);
        Precision = precision;
        _net = TorchModules.Build(model);
        _net.to(_device);
        var torchParameters = _net.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        if (precision == TorchPrecision.BFloat16) LowerPrecision(torchParameters);
        _state = _net.state_dict();
        foreach (var (name, master) in torchParameters) _state[name] = master; // the masters are the state
        var described = model.StateDict();
        _stateNames = described.Keys.ToList();
        foreach (var (name, p) in model.NamedParameters())
            _parameters.Add((p, torchParameters.TryGetValue(name, out var t) ? t
                : throw new TorchEngineException($"The torch network has no parameter '{name}' (it has {string.Join(", ", torchParameters.Keys.Take(8))}…).")));
        var torchModules = _net.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var (name, m) in model.NamedModules())
            if (m is Managed.Modules.BatchNorm2d bn) _norms.Add((bn, torchModules[name]));
        LoadModelState(described);
        OnOptimizerChanged();
        Train(true);
    }

    /// <inheritdoc />
    public override string Name => "torch";

    /// <summary>The number format of the convolutions and linear layers.</summary>
    public TorchPrecision Precision { get; }

    // Every layer with weights other than batch norm computes in bfloat16; its parameters in torchParameters are
    // replaced by float32 masters, which the optimizer and the state dicts see.
    private void LowerPrecision(Dictionary<string, Parameter> torchParameters)
    {
        foreach (var (name, module) in _net.named_modules())
        {
            if (module is BatchNorm2d || module.named_children().Any() || !module.named_parameters().Any()) continue;
            module.to(ScalarType.BFloat16);
            foreach (var (local, compute) in module.named_parameters())
            {
                string full = name.Length == 0 ? local : name + "." + local;
                var master = new Parameter(compute.detach().to(ScalarType.Float32));
                torchParameters[full] = master;
                _lowered.Add((master, compute));
            }
        }
    }

    // After the optimizer moved the masters (or a state was loaded), the bfloat16 copies follow.
    private void CopyMastersDown()
    {
        if (_lowered.Count == 0) return;
        using var noGrad = no_grad();
        foreach (var (master, compute) in _lowered) compute.copy_(master);
    }

    // The network's input in the format of its first layers; its output back in float32 for the loss.
    private Tensor Compute(Tensor x) => _lowered.Count == 0 ? x : x.to(ScalarType.BFloat16);

    private static Tensor Float32(Tensor x) => x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);

    // The network's logits for device inputs, in float32 whatever the precision.
    private Tensor NetworkLogits(Tensor x) => Float32(_net.call(Compute(x)));

    /// <inheritdoc />
    public override string Device => _device.type == DeviceType.CUDA ? $"cuda:{Math.Max(0, _device.index)}" : "cpu";

    /// <summary>The TorchSharp network (same names as the description).</summary>
    public nn.Module<Tensor, Tensor> Network => _net;

    /// <summary>
    /// Parses and checks a device: "cpu", "cuda" (device 0) or "cuda:N".
    /// </summary>
    /// <exception cref="TorchEngineException">CUDA is not usable here, or N is not a device.</exception>
    public static Device ResolveDevice(string device)
    {
        ArgumentNullException.ThrowIfNull(device);
        TorchRuntime.EnsureLoaded();
        string d = device.Trim().ToLowerInvariant();
        if (d == "cpu") return CPU;
        if (d != "cuda" && !d.StartsWith("cuda:", StringComparison.Ordinal))
            throw new ArgumentException($"Unknown device '{device}': use cpu, cuda or cuda:N.", nameof(device));
        int index = 0;
        if (d.Length > 4 && !int.TryParse(d.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out index))
            throw new ArgumentException($"Unknown device '{device}': the CUDA index must be a number (cuda:0).", nameof(device));
        if (!cuda.is_available())
            throw new TorchEngineException($"Device '{device}' was asked for, but libtorch sees no usable CUDA GPU. The application must reference a CUDA build of libtorch "
                + "(libtorch-cuda-12.8-linux-x64 or libtorch-cuda-12.8-win-x64, with TorchSharp 0.107.0) and the machine needs an NVIDIA driver; otherwise use --device cpu.");
        int count = cuda.device_count();
        if (index >= count) throw new TorchEngineException($"Device '{device}' is out of range: libtorch sees {count} CUDA device{(count == 1 ? "" : "s")} (cuda:0{(count > 1 ? $" to cuda:{count - 1}" : "")}).");
        return torch.device(DeviceType.CUDA, index);
    }

    /// <inheritdoc />
    protected override void OnTrainingChanged(bool training) => ApplyMode(training);

    // Walking TorchSharp's module tree costs a native call per module, so the mode is applied only when it or a
    // batch norm's FreezeStatistics changed.
    private void ApplyMode(bool training)
    {
        if (_frozenStatistics.Length != _norms.Count) _frozenStatistics = new bool[_norms.Count];
        bool changed = _mode != training;
        for (int i = 0; i < _norms.Count && !changed; i++) changed = _frozenStatistics[i] != _norms[i].Described.FreezeStatistics;
        if (!changed) return;
        _net.train(training);
        for (int i = 0; i < _norms.Count; i++)
        {
            _frozenStatistics[i] = _norms[i].Described.FreezeStatistics;
            if (training && _frozenStatistics[i]) _norms[i].Torch.eval();
        }
        _mode = training;
    }

    /// <inheritdoc />
    protected override void OnOptimizerChanged()
    {
        var byDescribed = new Dictionary<Managed.Modules.Parameter, Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (described, t) in _parameters) byDescribed[described] = t;
        _groups = Optimizer.Groups.Select(g => g.Parameters.Select(p => byDescribed.TryGetValue(p, out var t) ? t
            : throw new TorchEngineException($"A parameter of group '{g.Name}' is not part of the model.")).ToList()).ToList();
        _optimizer?.Dispose();
        _optimizer = Optimizer switch
        {
            Managed.Optimizers.Adam { Decoupled: true } => optim.AdamW(_groups.Select(ps => new AdamW.ParamGroup(ps, new AdamW.Options())).ToList()),
            Managed.Optimizers.Adam => optim.Adam(_groups.Select(ps => new Adam.ParamGroup(ps, new Adam.Options())).ToList()),
            Managed.Optimizers.Sgd => optim.SGD(_groups.Select(ps => new SGD.ParamGroup(ps, new SGD.Options())).ToList(), 0),
            _ => throw new TorchEngineException($"The torch engine has no counterpart for the optimizer {Optimizer.GetType().Name}; use AdamW, Adam or SGD."),
        };
        ApplyHyperparameters();
    }

    // The described groups' hyperparameters and the parameters' trainability, copied into libtorch before each step.
    private void ApplyHyperparameters()
    {
        var torchGroups = _optimizer.ParamGroups.ToList();
        for (int g = 0; g < torchGroups.Count; g++)
        {
            var d = Optimizer.Groups[g];
            double lr = d.LearningRate ?? 0, wd = d.WeightDecay ?? 0;
            switch (torchGroups[g])
            {
                case AdamW.ParamGroup a:
                    a.LearningRate = lr;
                    (a.Options.beta1, a.Options.beta2, a.Options.eps, a.Options.weight_decay) = (d.Momentum, d.Beta2, d.Eps, wd);
                    (a.Options.amsgrad, a.Options.maximize) = (false, false);
                    break;
                case Adam.ParamGroup a:
                    a.LearningRate = lr;
                    (a.Options.beta1, a.Options.beta2, a.Options.eps, a.Options.weight_decay) = (d.Momentum, d.Beta2, d.Eps, wd);
                    (a.Options.amsgrad, a.Options.maximize) = (false, false);
                    break;
                case SGD.ParamGroup s:
                    s.LearningRate = lr;
                    (s.Options.momentum, s.Options.dampening, s.Options.weight_decay, s.Options.nesterov, s.Options.maximize) =
                        (d.Momentum ?? 0, d.Dampening ?? 0, wd, d.Nesterov ?? false, false);
                    break;
            }
        }
    }

    // Copies trainability only where it changed; a parameter just frozen drops its gradient at once, so the
    // optimizer skips it (as the managed optimizer does).
    private void ApplyTrainability()
    {
        if (_trainable.Length != _parameters.Count)
        {
            _trainable = _parameters.Select(p => p.Torch.requires_grad).ToArray();
        }
        for (int i = 0; i < _parameters.Count; i++)
        {
            var (described, t) = _parameters[i];
            if (_trainable[i] == described.RequiresGrad) continue;
            t.requires_grad = _trainable[i] = described.RequiresGrad;
            if (!described.RequiresGrad) t.grad = null;
        }
        foreach (var (master, compute) in _lowered)
        {
            compute.requires_grad = master.requires_grad;
            if (!master.requires_grad) compute.grad = null;
        }
    }

    /// <inheritdoc />
    public override IDisposable BeginStep()
    {
        _loss = null;
        // Every few steps: hand back the C heap's free pages when its free part keeps growing (fragmentation).
        if (++_stepsSinceHeapCheck >= HeapCheckSteps)
        {
            _stepsSinceHeapCheck = 0;
            _heapWatch.Check();
        }
        return NewDisposeScope();
    }

    private const int HeapCheckSteps = 16;
    private readonly HeapGrowthWatch _heapWatch = new();
    private int _stepsSinceHeapCheck;

    /// <inheritdoc />
    public override double Forward(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ApplyTrainability();
        ApplyMode(Training);
        _batchSize = batch.Labels.Length;
        return OnDevice(() =>
        {
            var x = Inputs(batch);
            var y = Labels(batch.Labels);
            _loss = F.cross_entropy(NetworkLogits(x), y);
            return _loss.item<float>();
        });
    }

    /// <inheritdoc />
    public override void Backward()
    {
        var loss = _loss ?? throw new InvalidOperationException("Backward needs a Forward in the same step.");
        // Zeroed in place, not dropped (torch's default): every step's gradients then live in the same blocks. Dropped,
        // they were allocated anew in each backward pass among the activations being freed and lived on into the next
        // forward pass, which fragmented the C heap (ResNet-18 at 64 px: resident size up 62-70 % over ten epochs, 3 %
        // zeroed; docs/performance.md, "The C allocator under libtorch"). Frozen parameters have no gradient
        // (ApplyTrainability drops it), so the optimizer still skips them.
        _net.zero_grad(set_to_none: false);
        OnDevice(() =>
        {
            loss.backward();
            return 0.0;
        });
        // bfloat16: the gradients reach the float32 masters, where clipping and the optimizer read them.
        foreach (var (master, compute) in _lowered)
        {
            if (compute.grad is not { } g) master.grad = null;
            else if (master.grad is { } kept) kept.copy_(g); // in the same block, step after step, as above
            else master.grad = g.to(ScalarType.Float32);
        }
    }

    /// <inheritdoc />
    public override void ClipGradients(double max, bool byValue)
    {
        var trainable = _parameters.Where(p => p.Torch.requires_grad).Select(p => p.Torch).ToList();
        if (byValue) nn.utils.clip_grad_value_(trainable, max);
        else nn.utils.clip_grad_norm_(trainable, max);
    }

    /// <inheritdoc />
    public override void Step()
    {
        ApplyHyperparameters();
        _optimizer.step();
        CopyMastersDown();
    }

    private IEnumerable<Parameter> Trainable => _groups.SelectMany(g => g).Where(p => p.requires_grad);

    /// <inheritdoc />
    protected override int GradientLength() => checked((int)Trainable.Sum(p => p.numel()));

    /// <inheritdoc />
    protected override void ReadGradients(Span<float> bucket)
    {
        using var scope = NewDisposeScope();
        int offset = 0;
        foreach (var p in Trainable)
        {
            int n = (int)p.numel();
            var slot = bucket.Slice(offset, n);
            if (p.grad is { } g) MemoryMarshal.Cast<byte, float>(Float32(g).cpu().contiguous().bytes).CopyTo(slot);
            else slot.Clear();
            offset += n;
        }
    }

    /// <inheritdoc />
    protected override void WriteGradients(ReadOnlySpan<float> bucket)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int offset = 0;
        foreach (var p in Trainable)
        {
            int n = (int)p.numel();
            var host = empty(p.shape, ScalarType.Float32);
            MemoryMarshal.AsBytes(bucket.Slice(offset, n)).CopyTo(host.bytes);
            if (p.grad is { } g) g.copy_(host);
            else p.grad = host.to(_device).DetachFromDisposeScope();
            offset += n;
        }
    }

    /// <inheritdoc />
    public override Managed.Tensor Logits(Managed.Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        return LogitsOf(() => ToDevice(images), images.Shape[0]);
    }

    /// <inheritdoc />
    public override Managed.Tensor Logits(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return LogitsOf(() => Inputs(batch), batch.Labels.Length);
    }

    private Managed.Tensor LogitsOf(Func<Tensor> inputs, int batchSize)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        ApplyMode(Training);
        _batchSize = batchSize;
        return OnDevice(() => ToHost(NetworkLogits(inputs())));
    }

    /// <inheritdoc />
    public override Managed.Tensor BodyOutput(Batch batch, int children)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Body(children); // checks the description and the count
        var body = _net.named_children().Take(children).Select(kv => (nn.Module<Tensor, Tensor>)kv.module).ToList();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _batchSize = batch.Labels.Length;
        try
        {
            foreach (var m in body) m.eval();
            return OnDevice(() =>
            {
                var x = Compute(Inputs(batch));
                foreach (var m in body) x = m.call(x);
                return ToHost(Float32(x));
            });
        }
        finally
        {
            _mode = null; // the next step puts every module back in its mode
        }
    }

    /// <summary>
    /// On the CPU, the process's peak resident growth over one step (Linux: free heap memory handed back first with
    /// <c>malloc_trim</c>, the peak reset through <c>/proc/self/clear_refs</c>, read back as <c>VmHWM</c>). TorchSharp
    /// 0.107 reports no CUDA memory statistics, so on a GPU it is refused: size the batch by hand there, and a step
    /// that does not fit is a <see cref="DeviceOutOfMemoryException"/> with that advice.
    /// </summary>
    public override long ProbeStepBytes(int batch, (int Channels, int Height, int Width) input, int classes, bool training)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        if (_device.type != DeviceType.CPU)
            throw new NotSupportedException($"The batch-size finder cannot measure {Device}'s memory: TorchSharp 0.107 reports no CUDA memory statistics. Give the batch size (--batch).");
        if (!OperatingSystem.IsLinux()) throw new NotSupportedException("The torch engine's batch-size probe reads /proc and runs on Linux only.");
        ApplyTrainability();
        ApplyMode(training);
        _batchSize = batch;
        try
        {
            _ = TorchRuntime.TrimHeap();
            File.WriteAllText("/proc/self/clear_refs", "5"); // resets the peak resident size to the current one
            long before = StatusBytes("VmRSS:");
            using (var scope = NewDisposeScope())
            {
                OnDevice(() =>
                {
                    var x = zeros([batch, input.Channels, input.Height, input.Width], device: _device);
                    var y = Labels([.. Enumerable.Range(0, batch).Select(i => i % classes)]);
                    if (!training)
                    {
                        using var noGrad = no_grad();
                        return F.cross_entropy(NetworkLogits(x), y).item<float>();
                    }
                    F.cross_entropy(NetworkLogits(x), y).backward();
                    return 0f;
                });
            }
            return Math.Max(0, StatusBytes("VmHWM:") - before);
        }
        finally
        {
            _net.zero_grad(set_to_none: true);
            _mode = null;
            _ = TorchRuntime.TrimHeap(); // what the probe freed is not the process's any more
        }
    }

    /// <summary>16 and 128: resident memory moves by whole pages and the heap reuses blocks, which blur small steps.</summary>
    public override (int Small, int Large) ProbeBatchSizes => (16, 128);

    private static long StatusBytes(string field)
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>
    /// Whether batches of pixels are normalised and augmented on the engine's device (docs/design.md §9). Default true,
    /// on the CPU too, where libtorch does it in less CPU time than the managed kernels on the loader's thread
    /// (docs/performance.md, "Batches on the device").
    /// </summary>
    public bool PrepareOnDevice { get; set; } = true;

    /// <inheritdoc />
    public override bool PreparesBatches => PrepareOnDevice;

    // A batch of pixels is uploaded as uint8 and prepared on the device; a batch of host images is uploaded as it is.
    private Tensor Inputs(Batch batch) =>
        batch.Pixels is { } pixels && !batch.HasImages ? DeviceBatches.Prepare(pixels, _device) : ToDevice(batch.Images);

    /// <inheritdoc />
    public override StateDict ModelState()
    {
        var state = new StateDict();
        using var scope = NewDisposeScope();
        foreach (var name in _stateNames) state.Add(name, ToHost(_state[name], pooled: false));
        return state;
    }

    /// <inheritdoc />
    public override void LoadModelState(StateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var missing = _stateNames.Where(n => !state.ContainsKey(n)).ToList();
        var unexpected = state.Keys.Where(n => !_stateNames.Contains(n)).ToList();
        var misShaped = state.Where(kv => _state.TryGetValue(kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.Shape.ToArray().Select(s => (long)s)))
            .Select(kv => kv.Key).ToList();
        if (missing.Count + unexpected.Count + misShaped.Count > 0) throw new StateDictMismatchException(missing, unexpected, misShaped);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, value) in state) _state[name].copy_(ToDevice(value));
        CopyMastersDown();
    }

    /// <inheritdoc />
    public override StateDict OptimizerState()
    {
        var dict = new StateDict();
        foreach (var (key, value) in Optimizer.StateDict())
            if (key.StartsWith("group.", StringComparison.Ordinal)) dict.Add(key, value);
        var states = _optimizer is OptimizerHelper helper ? helper.state_dict() : throw new InvalidOperationException("Unknown optimizer.");
        using var scope = NewDisposeScope();
        int flat = 0;
        for (int g = 0; g < _groups.Count; g++)
        {
            for (int i = 0; i < _groups[g].Count; i++, flat++)
            {
                string prefix = $"state.{g}.{i}.";
                switch (states.State[flat])
                {
                    case AdamW.State a when a.step > 0: AddAdam(dict, prefix, a.step, a.exp_avg, a.exp_avg_sq); break;
                    case Adam.State a when a.step > 0: AddAdam(dict, prefix, a.step, a.exp_avg, a.exp_avg_sq); break;
                    case SGD.State s when s.momentum_buffer is not null: dict.Add(prefix + "momentum_buffer", ToHost(s.momentum_buffer, pooled: false)); break;
                }
            }
        }
        return dict;
    }

    private static void AddAdam(StateDict dict, string prefix, long step, Tensor expAvg, Tensor expAvgSq)
    {
        dict.Add(prefix + "exp_avg", ToHost(expAvg, pooled: false));
        dict.Add(prefix + "exp_avg_sq", ToHost(expAvgSq, pooled: false));
        dict.Add(prefix + "step", Managed.Tensor.Scalar(step, Managed.DType.Float64));
    }

    /// <inheritdoc />
    public override void LoadOptimizerState(StateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var hyper = new StateDict();
        var buffers = new Dictionary<(int Group, int Index), Dictionary<string, Managed.Tensor>>();
        foreach (var (key, value) in state)
        {
            var parts = key.Split('.');
            if (parts[0] == "group") { hyper.Add(key, value); continue; }
            if (parts.Length != 4 || parts[0] != "state" || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out int g) || !int.TryParse(parts[2], CultureInfo.InvariantCulture, out int i)
                || g >= _groups.Count || i >= _groups[g].Count)
                throw new StateDictMismatchException($"'{key}' is not an optimizer state entry of this optimizer ({_groups.Count} groups).");
            if (!buffers.TryGetValue((g, i), out var b)) buffers[(g, i)] = b = new Dictionary<string, Managed.Tensor>(StringComparer.Ordinal);
            b[parts[3]] = value;
        }
        Optimizer.LoadStateDict(hyper); // hyperparameters; the described optimizer keeps no buffers of its own
        var states = ((OptimizerHelper)_optimizer).state_dict();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int flat = 0;
        for (int g = 0; g < _groups.Count; g++)
        {
            for (int i = 0; i < _groups[g].Count; i++, flat++)
            {
                buffers.TryGetValue((g, i), out var b);
                Managed.Tensor? Get(string name) => b is not null && b.TryGetValue(name, out var t) ? t : null;
                switch (states.State[flat])
                {
                    case AdamW.State a: a.step = LoadAdam(Get("step"), Get("exp_avg"), Get("exp_avg_sq"), a.exp_avg, a.exp_avg_sq); break;
                    case Adam.State a: a.step = LoadAdam(Get("step"), Get("exp_avg"), Get("exp_avg_sq"), a.exp_avg, a.exp_avg_sq); break;
                    case SGD.State s:
                        s.momentum_buffer?.Dispose();
                        s.momentum_buffer = Get("momentum_buffer") is { } m ? ToDevice(m).DetachFromDisposeScope() : null;
                        break;
                }
            }
        }
        ApplyHyperparameters();
    }

    private long LoadAdam(Managed.Tensor? step, Managed.Tensor? expAvg, Managed.Tensor? expAvgSq, Tensor avg, Tensor avgSq)
    {
        if (step is null || expAvg is null || expAvgSq is null)
        {
            avg.zero_();
            avgSq.zero_();
            return 0;
        }
        avg.copy_(ToDevice(expAvg));
        avgSq.copy_(ToDevice(expAvgSq));
        return (long)step.Item();
    }

    /// <inheritdoc />
    public override void Release()
    {
        _optimizer.Dispose();
        _net.Dispose();
    }

    // libtorch reports an allocation failure as an ExternalException naming its allocator; it becomes advice.
    private T OnDevice<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (ExternalException e) when (e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
                                          || e.Message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase)
                                          || e.Message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase))
        {
            _loss = null;
            string first = e.Message.Split('\n', 2)[0].Trim();
            const string Advice = "Use a smaller batch, or let the batch-size finder choose one that fits (fasttrain train --batch auto, or --memory-budget; BatchSizeFinder in code).";
            throw new DeviceOutOfMemoryException(Device, _batchSize, string.Create(CultureInfo.InvariantCulture,
                $"The {Device} device ran out of memory for a step of batch {_batchSize} ({first}). {Advice}"), e);
        }
    }

    // ---- host ⇄ device --------------------------------------------------------------------------------------------

    private Tensor ToDevice(Managed.Tensor t)
    {
        var shape = t.ShapeArray().Select(s => (long)s).ToArray();
        if (t.DType == Managed.DType.Float64)
        {
            var d = empty(shape, ScalarType.Float64);
            MemoryMarshal.AsBytes(t.AsDoubleSpan()).CopyTo(d.bytes);
            return d.to(_device);
        }
        var host = empty(shape, ScalarType.Float32);
        MemoryMarshal.AsBytes(t.AsSpan()).CopyTo(host.bytes);
        return _device.type == DeviceType.CPU ? host : host.to(_device);
    }

    private Tensor Labels(int[] labels)
    {
        var y = empty([labels.Length], ScalarType.Int64);
        var span = MemoryMarshal.Cast<byte, long>(y.bytes);
        for (int i = 0; i < labels.Length; i++) span[i] = labels[i];
        return _device.type == DeviceType.CPU ? y : y.to(_device);
    }

    private static Managed.Tensor ToHost(Tensor t, bool pooled = true)
    {
        var cpu = t.device_type == DeviceType.CPU ? t.contiguous() : t.cpu().contiguous();
        var shape = cpu.shape.Select(s => checked((int)s)).ToArray();
        Managed.Tensor host;
        if (cpu.dtype == ScalarType.Float64)
        {
            return Managed.Tensor.FromArray(MemoryMarshal.Cast<byte, double>(cpu.bytes).ToArray(), shape);
        }
        if (cpu.dtype != ScalarType.Float32) cpu = cpu.to_type(ScalarType.Float32);
        host = pooled ? Managed.Tensor.Zeros(shape) : Managed.Tensor.FromArray(new float[cpu.NumberOfElements], shape);
        MemoryMarshal.Cast<byte, float>(cpu.bytes).CopyTo(host.AsSpan());
        return host;
    }
}
