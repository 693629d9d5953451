namespace MLNet.FastTrain.Engine;

/// <summary>
/// Arrays kept for reuse by <see cref="TensorScope"/>, in buckets of exactly one length (a training step asks for
/// the same shapes every time). A bucket unused for many scopes is dropped, so a change of batch or image size
/// does not keep the old sizes' memory forever; those who change the sizes on purpose (the batch-size finder,
/// progressive resizing) empty the pool at once with <see cref="Clear"/>.
/// </summary>
internal static class TensorPool
{
    /// <summary>
    /// Scopes a bucket may go unused before it is dropped: more than an epoch of a small dataset, so that training
    /// and validation, which alternate every epoch and need different sizes, each find their memory waiting (with 4
    /// each epoch gave back all of the other's memory and asked the collector for it again).
    /// </summary>
    private const int MaxIdleGenerations = 2048;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<(DType, int), Bucket> Buckets = [];
    private static long s_generation;
    private static long s_pooledBytes;

    public static long PooledBytes { get { lock (Gate) return s_pooledBytes; } }

    public static Array Rent(int length, DType dtype)
    {
        lock (Gate)
        {
            if (Buckets.TryGetValue((dtype, length), out var bucket))
            {
                bucket.LastUsed = s_generation;
                if (bucket.Free.Count > 0)
                {
                    s_pooledBytes -= Bytes(length, dtype);
                    return bucket.Free.Pop();
                }
            }
        }
        try
        {
            return New(length, dtype);
        }
        catch (OutOfMemoryException)
        {
            // The pool is a cache: under a heap limit its idle arrays may be what is in the way. Once dropped and
            // collected, the allocation is tried again; failing then, the heap is truly full.
            Clear();
            GC.Collect();
            return New(length, dtype);
        }
    }

    private static Array New(int length, DType dtype) =>
        dtype == DType.Float32 ? GC.AllocateUninitializedArray<float>(length) : GC.AllocateUninitializedArray<double>(length);

    public static void Return(Array array)
    {
        var dtype = array is double[] ? DType.Float64 : DType.Float32;
        lock (Gate)
        {
            if (!Buckets.TryGetValue((dtype, array.Length), out var bucket))
                Buckets[(dtype, array.Length)] = bucket = new Bucket();
            bucket.LastUsed = s_generation;
            bucket.Free.Push(array);
            s_pooledBytes += Bytes(array.Length, dtype);
        }
    }

    public static void EndGeneration()
    {
        lock (Gate)
        {
            s_generation++;
            List<(DType, int)>? idle = null;
            foreach (var (key, bucket) in Buckets)
                if (s_generation - bucket.LastUsed > MaxIdleGenerations) (idle ??= []).Add(key);
            if (idle is null) return;
            foreach (var key in idle)
            {
                s_pooledBytes -= Buckets[key].Free.Count * Bytes(key.Item2, key.Item1);
                Buckets.Remove(key);
            }
        }
    }

    /// <summary>Drops every array waiting for reuse (the memory goes back to the garbage collector).</summary>
    public static void Clear()
    {
        lock (Gate)
        {
            Buckets.Clear();
            s_pooledBytes = 0;
        }
    }

    private static long Bytes(int length, DType dtype) => (long)length * (dtype == DType.Float32 ? 4 : 8);

    private sealed class Bucket
    {
        public Stack<Array> Free { get; } = new();

        public long LastUsed { get; set; }
    }
}
