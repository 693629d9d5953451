namespace MLNet.FastTrain.Engine;

/// <summary>
/// Counts the multiply-adds of the forward passes of matmul, linear and conv2d, for throughput reports.
/// A training step costs about three times its forward multiply-adds (forward, input gradient, weight gradient).
/// </summary>
public static class OperationCounters
{
    private static long s_multiplyAdds;

    /// <summary>Multiply-adds counted since the last <see cref="Reset"/>.</summary>
    public static long MultiplyAdds => Interlocked.Read(ref s_multiplyAdds);

    /// <summary>Sets the count to zero.</summary>
    public static void Reset() => Interlocked.Exchange(ref s_multiplyAdds, 0);

    internal static void Add(long multiplyAdds) => Interlocked.Add(ref s_multiplyAdds, multiplyAdds);
}
