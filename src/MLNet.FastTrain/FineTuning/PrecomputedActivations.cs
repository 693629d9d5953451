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
    public static TensorBatchSource Compute(Module body, DataLoader images, int? batchSize = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(images);
        if (images.BatchTransform is not null)
            throw new InvalidOperationException("Precomputed activations need augmentation off: with it, the body sees different images every epoch. Train through the frozen body instead.");
        var ordered = new DataLoader(images.Dataset, Math.Max(images.BatchSize, 256), shuffle: false, normalization: images.Normalization);
        Tensor? cache = null;
        var labels = new int[images.Dataset.Count];
        int row = 0;
        bool wasTraining = body.Training;
        body.Eval();
        try
        {
            using var noGrad = GradRecorder.NoGrad();
            foreach (var batch in ordered.Epoch(0, cancellationToken: cancellationToken))
            {
                using var scope = TensorScope.Begin();
                var features = body.Forward(batch.Images);
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
        }
        finally
        {
            body.Train(wasTraining);
        }
        if (cache is null) throw new InvalidOperationException("The dataset is empty: nothing to precompute.");
        return new TensorBatchSource(cache, labels, batchSize ?? images.BatchSize, images.Shuffle, images.Seed, images.DropLast);
    }
}
