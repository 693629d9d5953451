using MLNet.FastTrain.Engine.Modules;

namespace MLNet.FastTrain.FineTuning;

/// <summary>One layer group: a name and the model's top-level children it covers.</summary>
public sealed record LayerGroup(string Name, IReadOnlyList<string> Children);

/// <summary>
/// Splits a model into layer groups by its top-level children, fastai's way of giving early layers lower learning
/// rates than later ones. The last group is the head.
/// </summary>
public static class LayerGroups
{
    /// <summary>
    /// The default three-way split of a zoo network (early body, late body, head), as fastai splits its models; for
    /// ResNet-18/34 the body splits before layer3, as fastai splits torchvision ResNets.
    /// </summary>
    public static IReadOnlyList<LayerGroup> Default(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var names = model.NamedChildren().Select(kv => kv.Key).ToList();
        if (names.SequenceEqual(["conv1", "bn1", "relu", "layer1", "layer2", "layer3", "pool", "flatten", "fc"]))
            return [new("body.early", ["conv1", "bn1", "relu", "layer1"]), new("body.late", ["layer2", "layer3"]), new("head", ["pool", "flatten", "fc"])];
        if (names.SequenceEqual(["conv1", "relu1", "conv2", "relu2", "pool", "flatten", "fc1", "relu3", "fc2"]))
            return [new("body.early", ["conv1", "relu1"]), new("body.late", ["conv2", "relu2", "pool"]), new("head", ["flatten", "fc1", "relu3", "fc2"])];
        if (names.SequenceEqual(["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc"]))
            return [new("body.early", ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"]), new("body.late", ["layer3", "layer4"]), new("head", ["avgpool", "flatten", "fc"])];
        throw new ArgumentException(
            $"No default layer groups for a model whose children are [{string.Join(", ", names)}]; split it by name with LayerGroups.ByChildren.", nameof(model));
    }

    /// <summary>Groups given as lists of top-level child names; every child with parameters must be in exactly one group.</summary>
    public static IReadOnlyList<LayerGroup> ByChildren(Module model, params string[][] groups)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(groups);
        if (groups.Length == 0) throw new ArgumentException("At least one group is needed.", nameof(groups));
        var children = model.NamedChildren().ToDictionary(kv => kv.Key, kv => kv.Value);
        var seen = new HashSet<string>();
        var unknown = groups.SelectMany(g => g).Where(n => !children.ContainsKey(n)).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"The model has no children named {string.Join(", ", unknown)}.", nameof(groups));
        var twice = groups.SelectMany(g => g).Where(n => !seen.Add(n)).ToList();
        if (twice.Count > 0) throw new ArgumentException($"Children in more than one group: {string.Join(", ", twice)}.", nameof(groups));
        var missing = children.Where(kv => !seen.Contains(kv.Key) && kv.Value.Parameters().Any()).Select(kv => kv.Key).ToList();
        if (missing.Count > 0) throw new ArgumentException($"Children with parameters in no group: {string.Join(", ", missing)}.", nameof(groups));
        return groups.Select((g, i) => new LayerGroup(i == groups.Length - 1 ? "head" : $"group{i}", g)).ToList();
    }
}
