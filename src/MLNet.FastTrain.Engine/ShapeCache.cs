namespace MLNet.FastTrain.Engine;

/// <summary>
/// One shared array per distinct shape, per thread. A tensor's shape array is never written after the tensor is
/// made, so tensors of equal shape can hold the same one, and a training step, which asks for the same shapes every
/// time, makes no new ones.
/// </summary>
internal static class ShapeCache
{
    /// <summary>Distinct shapes kept per thread before the cache starts over (a bound for programs that sweep sizes).</summary>
    private const int MaxShapes = 4096;

    [ThreadStatic] private static Dictionary<int[], int[]>? t_shapes;

    /// <summary>The shared array holding <paramref name="shape"/>.</summary>
    public static int[] Intern(ReadOnlySpan<int> shape)
    {
        if (shape.IsEmpty) return [];
        var shapes = t_shapes ??= new Dictionary<int[], int[]>(Comparer.Instance);
        var lookup = shapes.GetAlternateLookup<ReadOnlySpan<int>>();
        if (lookup.TryGetValue(shape, out var shared)) return shared;
        if (shapes.Count >= MaxShapes) shapes.Clear();
        shared = shape.ToArray();
        shapes.Add(shared, shared);
        return shared;
    }

    /// <summary>Compares shapes by their dimensions, whether held in an array or a span.</summary>
    private sealed class Comparer : IEqualityComparer<int[]>, IAlternateEqualityComparer<ReadOnlySpan<int>, int[]>
    {
        public static readonly Comparer Instance = new();

        public bool Equals(int[]? x, int[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(int[] obj) => GetHashCode((ReadOnlySpan<int>)obj);

        public bool Equals(ReadOnlySpan<int> alternate, int[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<int> alternate)
        {
            var hash = new HashCode();
            foreach (int d in alternate) hash.Add(d);
            return hash.ToHashCode();
        }

        public int[] Create(ReadOnlySpan<int> alternate) => alternate.ToArray();
    }
}
