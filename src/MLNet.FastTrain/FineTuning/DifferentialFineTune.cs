using System.Globalization;
using System.Text;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;

namespace MLNet.FastTrain.FineTuning;

/// <summary>
/// Discriminative fine-tuning (Howard and Ruder, 2018; fastai): a model split into layer groups, each with its own
/// learning rate, that can be frozen and unfrozen group by group.
/// </summary>
/// <remarks>
/// Each layer group becomes two optimizer parameter groups: weights with weight decay, and batch-norm and bias
/// parameters without it (the default, as fastai). Batch-norm layers in frozen groups stay trainable by default, as
/// fastai's train_bn; with <see cref="FreezeBatchNormStatistics"/> they are frozen outright, statistics included.
/// </remarks>
public sealed class DifferentialFineTune
{
    private readonly Module _model;
    private readonly List<(LayerGroup Group, List<Parameter> Decay, List<Parameter> NoDecay, List<BatchNorm2d> Norms)> _groups = [];
    private int _frozenUpTo;

    /// <summary>Creates the split; groups default to <see cref="LayerGroups.Default"/>.</summary>
    public DifferentialFineTune(Module model, IReadOnlyList<LayerGroup>? groups = null, bool noWeightDecayOnNormAndBias = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        var children = model.NamedChildren().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var g in groups ?? LayerGroups.Default(model))
        {
            var decay = new List<Parameter>();
            var noDecay = new List<Parameter>();
            var norms = new List<BatchNorm2d>();
            foreach (var name in g.Children)
            {
                var child = children.TryGetValue(name, out var c) ? c : throw new ArgumentException($"The model has no child '{name}'.", nameof(groups));
                foreach (var (_, module) in child.NamedModules())
                {
                    if (module is BatchNorm2d bn) norms.Add(bn);
                }
                foreach (var (pname, p) in child.NamedParameters())
                {
                    bool isNormOrBias = pname.EndsWith("bias", StringComparison.Ordinal) || norms.Any(bn => ReferenceEquals(bn.Weight, p));
                    (noWeightDecayOnNormAndBias && isNormOrBias ? noDecay : decay).Add(p);
                }
            }
            _groups.Add((g, decay, noDecay, norms));
        }
        NoWeightDecayOnNormAndBias = noWeightDecayOnNormAndBias;
    }

    /// <summary>The layer groups, earliest first; the last is the head.</summary>
    public IReadOnlyList<LayerGroup> Groups => _groups.Select(g => g.Group).ToList();

    /// <summary>Whether batch-norm and bias parameters get no weight decay.</summary>
    public bool NoWeightDecayOnNormAndBias { get; }

    /// <summary>When true, freezing a group also freezes its batch-norm layers' parameters and running statistics.</summary>
    public bool FreezeBatchNormStatistics { get; set; }

    /// <summary>Groups [0, this) are frozen.</summary>
    public int FrozenGroups => _frozenUpTo;

    /// <summary>
    /// Optimizer parameter groups: for each layer group, its weights, then its batch-norm and bias parameters (with
    /// weight decay 0 when <see cref="NoWeightDecayOnNormAndBias"/>). Use with <see cref="SetLearningRates(Optimizer, double[])"/>.
    /// </summary>
    public IReadOnlyList<ParamGroup> CreateParamGroups()
    {
        var result = new List<ParamGroup>();
        foreach (var (g, decay, noDecay, _) in _groups)
        {
            result.Add(new ParamGroup(decay, g.Name));
            result.Add(new ParamGroup(noDecay, g.Name + ".norm_bias") { WeightDecay = NoWeightDecayOnNormAndBias ? 0 : null });
        }
        return result;
    }

    /// <summary>
    /// Learning rates per layer group from fastai's conventions: one value gives the head that value and the earlier
    /// groups a tenth of it; (low, high) spreads geometrically from the first group to the head.
    /// </summary>
    public double[] Spread(double lr) => Enumerable.Range(0, _groups.Count).Select(i => i == _groups.Count - 1 ? lr : lr / 10).ToArray();

    /// <inheritdoc cref="Spread(double)"/>
    public double[] Spread(double low, double high)
    {
        if (!(low > 0) || !(high >= low)) throw new ArgumentOutOfRangeException(nameof(low), $"Need 0 < low ≤ high, got {low} and {high}.");
        int n = _groups.Count;
        return Enumerable.Range(0, n).Select(i => n == 1 ? high : low * Math.Pow(high / low, (double)i / (n - 1))).ToArray();
    }

    /// <summary>Expands per-layer-group rates to the optimizer's parameter groups (two per layer group).</summary>
    public double[] PerParamGroup(double[] perLayerGroup)
    {
        ArgumentNullException.ThrowIfNull(perLayerGroup);
        if (perLayerGroup.Length != _groups.Count)
            throw new ArgumentException($"{perLayerGroup.Length} learning rates for {_groups.Count} layer groups.", nameof(perLayerGroup));
        return perLayerGroup.SelectMany(lr => new[] { lr, lr }).ToArray();
    }

    /// <summary>Sets the optimizer's rates from per-layer-group values.</summary>
    public void SetLearningRates(Optimizer optimizer, double[] perLayerGroup)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var rates = PerParamGroup(perLayerGroup);
        if (optimizer.Groups.Count != rates.Length)
            throw new ArgumentException($"The optimizer has {optimizer.Groups.Count} parameter groups; CreateParamGroups makes {rates.Length}.", nameof(optimizer));
        for (int i = 0; i < rates.Length; i++) optimizer.Groups[i].LearningRate = rates[i];
    }

    /// <summary>Freezes every group but the head.</summary>
    public void Freeze(Optimizer? optimizer = null) => FreezeTo(_groups.Count - 1, optimizer);

    /// <summary>Unfreezes every group.</summary>
    public void Unfreeze(Optimizer? optimizer = null) => FreezeTo(0, optimizer);

    /// <summary>
    /// Freezes groups [0, n) and unfreezes the rest. Groups that become trainable start with clean optimizer state
    /// (momentum from before they were frozen would be stale).
    /// </summary>
    public void FreezeTo(int n, Optimizer? optimizer = null)
    {
        if (n < 0 || n >= _groups.Count + 1) throw new ArgumentOutOfRangeException(nameof(n), $"FreezeTo({n}): there are {_groups.Count} groups.");
        for (int i = 0; i < _groups.Count; i++)
        {
            var (_, decay, noDecay, norms) = _groups[i];
            bool frozen = i < n;
            bool wasFrozen = i < _frozenUpTo;
            foreach (var p in decay) p.RequiresGrad = !frozen;
            var normParams = new HashSet<Parameter>(norms.SelectMany(bn => bn.Parameters()), ReferenceEqualityComparer.Instance);
            foreach (var p in noDecay) p.RequiresGrad = !frozen || (normParams.Contains(p) && !FreezeBatchNormStatistics);
            foreach (var bn in norms) bn.FreezeStatistics = frozen && FreezeBatchNormStatistics;
            if (optimizer is not null && wasFrozen && !frozen && optimizer.Groups.Count == 2 * _groups.Count)
            {
                optimizer.ClearState(optimizer.Groups[2 * i]);
                optimizer.ClearState(optimizer.Groups[2 * i + 1]);
            }
        }
        _frozenUpTo = n;
    }

    /// <summary>A table of the groups: parameters, trainable parameters and learning rate.</summary>
    public string Describe(Optimizer? optimizer = null)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine("group        children                              params  trainable  lr");
        for (int i = 0; i < _groups.Count; i++)
        {
            var (g, decay, noDecay, _) = _groups[i];
            long all = decay.Concat(noDecay).Sum(p => (long)p.Length);
            long trainable = decay.Concat(noDecay).Where(p => p.RequiresGrad).Sum(p => (long)p.Length);
            string lr = optimizer is not null && optimizer.Groups.Count == 2 * _groups.Count ? (optimizer.Groups[2 * i].LearningRate ?? 0).ToString("G3", inv) : "-";
            sb.AppendLine(string.Create(inv, $"{g.Name,-12} {string.Join(",", g.Children),-37} {all,7} {trainable,10}  {lr}"));
        }
        return sb.ToString();
    }

    /// <summary>
    /// The model as body (every group but the head) and head, sharing its modules: running the body and then the
    /// head is running the model. Needs a <see cref="Sequential"/> whose head children come last.
    /// </summary>
    public (Sequential Body, Sequential Head) SplitBodyHead()
    {
        if (_model is not Sequential seq) throw new InvalidOperationException("Splitting into body and head needs a Sequential model.");
        var children = seq.NamedChildren().ToList();
        var head = _groups[^1].Group.Children;
        var tail = children.Skip(children.Count - head.Count).Select(kv => kv.Key);
        if (!tail.SequenceEqual(head))
            throw new InvalidOperationException($"The head group [{string.Join(", ", head)}] is not the model's last children.");
        var body = new Sequential(children.Take(children.Count - head.Count).Select(kv => (kv.Key, kv.Value)).ToArray());
        return (body, new Sequential(children.Skip(children.Count - head.Count).Select(kv => (kv.Key, kv.Value)).ToArray()));
    }

    /// <summary>
    /// Replaces the model's last <see cref="Linear"/> child with a fresh one for <paramref name="numClasses"/> classes
    /// (a new head for a pretrained body). The model must be a <see cref="Sequential"/>.
    /// </summary>
    public static void ReplaceHead(Module model, int numClasses, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numClasses);
        if (model is not Sequential seq) throw new ArgumentException("ReplaceHead needs a Sequential model.", nameof(model));
        for (int i = seq.Count - 1; i >= 0; i--)
        {
            if (seq[i] is Linear old)
            {
                seq[i] = new Linear(old.InFeatures, numClasses, old.Bias is not null, generator);
                return;
            }
        }
        throw new ArgumentException("The model has no Linear layer to replace.", nameof(model));
    }

    /// <summary>
    /// Makes a pretrained network take images of <paramref name="channels"/> channels. From three to one, the first
    /// convolution's weights are summed over its input channels: the result on a grey image is exactly what the
    /// original gives on that image repeated in all three channels. Other changes are not defined and throw.
    /// </summary>
    public static void AdaptInputChannels(Module model, int channels)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        var (path, first) = model.NamedModules().Where(kv => kv.Value is Conv2d).Select(kv => (kv.Key, (Conv2d)kv.Value)).FirstOrDefault();
        if (first is null) throw new ArgumentException("The model has no convolution to adapt.", nameof(model));
        if (first.InChannels == channels) return;
        if (channels != 1 || first.Groups != 1)
            throw new ArgumentException($"The network takes {first.InChannels}-channel images; only adapting to 1 channel (grey) is defined, not to {channels}.", nameof(channels));
        var adapted = new Conv2d(1, first.OutChannels, first.KernelSize, first.Stride, first.Padding, first.Dilation, 1, first.Bias is not null)
        {
            PaddingEnd = first.PaddingEnd,
        };
        var source = first.Weight.AsSpan();
        var target = adapted.Weight.AsSpan();
        int plane = first.KernelSize.H * first.KernelSize.W;
        for (int o = 0; o < first.OutChannels; o++)
        {
            var sum = target.Slice(o * plane, plane);
            sum.Clear();
            for (int c = 0; c < first.InChannels; c++)
                System.Numerics.Tensors.TensorPrimitives.Add(sum, source.Slice((o * first.InChannels + c) * plane, plane), sum);
        }
        first.Bias?.AsSpan().CopyTo(adapted.Bias!.AsSpan());
        Replace(model, path, adapted);
    }

    private static void Replace(Module root, string path, Module replacement)
    {
        var parts = path.Split('.');
        var parent = root;
        foreach (var part in parts[..^1]) parent = parent.Child(part);
        parent.ReplaceChild(parts[^1], replacement);
    }
}
