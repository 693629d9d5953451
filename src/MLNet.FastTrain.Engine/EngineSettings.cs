using System.Globalization;

namespace MLNet.FastTrain.Engine;

/// <summary>Process-wide engine settings.</summary>
public static class EngineSettings
{
    private static int s_threads = DefaultThreads();

    /// <summary>
    /// How many cores kernels may use. Defaults to the environment variable <c>FASTTRAIN_THREADS</c>, else all
    /// cores. Work is split into fixed pieces per thread count, so results are identical run to run for a given
    /// seed and thread count.
    /// </summary>
    public static int Threads
    {
        get => s_threads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            s_threads = value;
        }
    }

    private static int DefaultThreads()
    {
        string? text = Environment.GetEnvironmentVariable("FASTTRAIN_THREADS");
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : Environment.ProcessorCount;
    }
}
