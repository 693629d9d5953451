using MLNet.FastTrain.Engine.Kernels;

namespace MLNet.FastTrain.Engine.Tests;

/// <summary>
/// Bytes allocated by the calling thread and the worker team's first worker, read on those threads. The test host
/// allocates on threads of its own (serialising results for the runner) whenever it likes, so a process-wide count
/// is not a measurement of the engine.
/// </summary>
internal static class TeamAllocations
{
    private static readonly long[] Readings = new long[2];

    /// <summary>The running total for the caller and worker 1 (which this call starts, if it is not running yet).</summary>
    public static long Read()
    {
        WorkerTeam.Run(Readings.Length, Readings, static (readings, part) => readings[part] = GC.GetAllocatedBytesForCurrentThread());
        return Readings[0] + Readings[1];
    }
}
