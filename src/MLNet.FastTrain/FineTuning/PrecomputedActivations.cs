using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.FineTuning;

/// <summary>
/// fastai's precompute: with the body frozen and no augmentation, the body's output for each item never changes, so
/// it is computed once and the head trains on the cached activations — each epoch then costs only the head.
/// </summary>
/// <remarks>
/// The body runs in evaluation mode (batch-norm with its running statistics, no dropout), which is what a frozen body
/// with frozen statistics computes during training, so training the head on the cache gives the same weights as
/// training it through that frozen body.
/// </remarks>
public static class PrecomputedActivations
{
    /// <summary>
    /// The body's output for every item of <paramref name="images"/>, as a batch source with the same batch size,
    /// shuffle, seed and drop-last setting.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loader augments its images: the body would see different images every epoch.</exception>
    public static TensorBatchSource Compute(Module body, DataLoader images, int? batchSize = null, CancellationToken cancellationToken = default) =>
        Compute(body, images, cacheDirectory: null, batchSize, cancellationToken);

    /// <summary>
    /// As <see cref="Compute(Module, DataLoader, int?, CancellationToken)"/>, keeping the activations in
    /// <paramref name="cacheDirectory"/> too: a file named by a hash of the body's weights and buffers, the images and
    /// labels, the normalisation and the image size, so a later run with the same body and data reads it instead of
    /// running the body again. The file is written atomically; a damaged one is recomputed.
    /// </summary>
    public static TensorBatchSource Compute(Module body, DataLoader images, string? cacheDirectory, int? batchSize = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Compute(body, batch => Engines.TrainingEngine.ForwardInEvaluation([body], batch.Images), images, cacheDirectory, batchSize, configure: null, cancellationToken);
    }

    /// <summary>
    /// As <see cref="Compute(Module, DataLoader, string?, int?, CancellationToken)"/> for the body made of the
    /// first <paramref name="bodyChildren"/> top-level children of <paramref name="engine"/>'s network, run by the
    /// engine (on its device, with batches prepared there when it does so).
    /// </summary>
    public static TensorBatchSource Compute(Engines.TrainingEngine engine, int bodyChildren, DataLoader images, string? cacheDirectory = null, int? batchSize = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(engine);
        if (engine.SyncDescription() is not Sequential sequential)
            throw new InvalidOperationException($"Precomputed activations need a Sequential network, not {engine.Description.GetType().Name}.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bodyChildren);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bodyChildren, sequential.Count);
        var body = new Sequential([.. sequential.NamedChildren().Take(bodyChildren).Select(kv => (kv.Key, kv.Value))]);
        return Compute(body, batch => engine.BodyOutput(batch, bodyChildren), images, cacheDirectory, batchSize,
            loader => loader.HandOverPixels = engine.PreparesBatches, cancellationToken);
    }

    private static TensorBatchSource Compute(Module body, Func<Batch, Tensor> forward, DataLoader images, string? cacheDirectory, int? batchSize,
        Action<DataLoader>? configure, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.BatchTransform is not null)
            throw new InvalidOperationException("Precomputed activations need augmentation off: with it, the body sees different images every epoch. Train through the frozen body instead.");
        string? file = cacheDirectory is null ? null : Path.Combine(cacheDirectory, $"activations-{CacheKey(body, images)}.ftm");
        if (file is not null && File.Exists(file))
        {
            try
            {
                var (state, _) = Engine.Serialization.ModelFile.Load(file);
                var cached = state["activations"];
                var labelValues = state["labels"].ToArray().Select(v => (int)v).ToArray();
                if (labelValues.Length == images.Dataset.Count && labelValues.AsSpan().SequenceEqual(images.Dataset.Labels))
                    return new TensorBatchSource(cached, labelValues, batchSize ?? images.BatchSize, images.Shuffle, images.Seed, images.DropLast);
            }
            catch (Exception e) when (e is Engine.Serialization.ModelFileException or KeyNotFoundException)
            {
                // a damaged or foreign file: computed again below and replaced
            }
        }
        var source = ComputeInMemory(forward, images, batchSize, configure, cancellationToken);
        if (file is not null)
        {
            Directory.CreateDirectory(cacheDirectory!);
            var state = new Engine.Serialization.StateDict();
            state.Add("activations", source.Items);
            state.Add("labels", Tensor.FromArray(images.Dataset.Labels.ToArray().Select(l => (float)l).ToArray()));
            Engine.Serialization.ModelFile.Save(file, state, new Dictionary<string, string> { ["kind"] = "precomputed activations" });
        }
        return source;
    }

    /// <summary>SHA-256 over the body's named weights and buffers, the images and labels, the normalisation and the size.</summary>
    private static string CacheKey(Module body, DataLoader images)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        void Text(string s) => hash.AppendData(System.Text.Encoding.UTF8.GetBytes(s + "\n"));
        Text("fasttrain-activations-v1");
        foreach (var (name, tensor) in body.StateDict())
        {
            Text($"{name}:{string.Join(",", tensor.ShapeArray())}");
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>(tensor.ToArray()));
        }
        var data = images.Dataset;
        Text($"{data.Count}x{data.Channels}x{data.Height}x{data.Width}");
        for (int i = 0; i < data.Count; i++) hash.AppendData(data.Pixels(i));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.Labels));
        var (mean, std) = images.Normalization;
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>(mean));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>(std));
        Text($"size {images.ImageSize?.Height ?? data.Height}x{images.ImageSize?.Width ?? data.Width}");
        return Convert.ToHexString(hash.GetHashAndReset())[..32].ToLowerInvariant();
    }

    private static TensorBatchSource ComputeInMemory(Func<Batch, Tensor> forward, DataLoader images, int? batchSize, Action<DataLoader>? configure,
        CancellationToken cancellationToken)
    {
        var ordered = new DataLoader(images.Dataset, Math.Max(images.BatchSize, 256), shuffle: false, normalization: images.Normalization) { ImageSize = images.ImageSize };
        configure?.Invoke(ordered);
        Tensor? cache = null;
        var labels = new int[images.Dataset.Count];
        int row = 0;
        foreach (var batch in ordered.Epoch(0, cancellationToken: cancellationToken))
        {
            using var scope = TensorScope.Begin();
            batch.AdoptIntoScope();
            var features = forward(batch);
            if (cache is null)
            {
                using var keep = TensorScope.Suspend();
                var shape = features.ShapeArray();
                shape[0] = images.Dataset.Count;
                cache = Tensor.Zeros(shape, features.DType);
            }
            cache.Narrow(row, batch.Labels.Length).CopyFrom(features);
            batch.Labels.CopyTo(labels, row);
            row += batch.Labels.Length;
        }
        if (cache is null) throw new InvalidOperationException("The dataset is empty: nothing to precompute.");
        return new TensorBatchSource(cache, labels, batchSize ?? images.BatchSize, images.Shuffle, images.Seed, images.DropLast);
    }
}
