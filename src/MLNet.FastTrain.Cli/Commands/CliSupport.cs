using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using MLNet.FastTrain.Engine.Serialization;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>Exit codes, error reporting and options shared by the commands.</summary>
internal static class CliSupport
{
    /// <summary>--backend and --device, shared by the commands that train.</summary>
    public static (Option<string> Backend, Option<string> Device, Option<string> Precision) EngineOptions() => (
        new Option<string>("--backend") { Description = "auto, managed or torch (auto: torch on a usable GPU, otherwise managed)", DefaultValueFactory = _ => "auto" },
        new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N (cuda needs --backend torch or auto and a CUDA libtorch)", DefaultValueFactory = _ => "auto" },
        new Option<string>("--precision")
        {
            Description = "float32, or bfloat16 (torch engine: convolutions and linear layers in bfloat16 with float32 master weights; fast on CPUs with AMX and on GPUs)",
            DefaultValueFactory = _ => "float32",
        });

    public const int Success = 0;
    public const int UserError = 1;
    public const int UsageError = 2;
    public const int Cancelled = 130;

    public static readonly Option<bool> Verbose = new("--verbose") { Description = "show stack traces of errors", Recursive = true };

    // The signals that stop a run the way Ctrl+C does, and the shell's exit code for each (128 + the signal's number):
    // SIGINT (Ctrl+C), SIGTERM (kill, timeout, docker stop, Kubernetes, a preempted cloud machine), SIGHUP (a closed terminal).
    private static readonly (PosixSignal Signal, int ExitCode)[] Stops = [(PosixSignal.SIGINT, Cancelled), (PosixSignal.SIGTERM, 143), (PosixSignal.SIGHUP, 129)];

    // The exit code of the signal that stopped this process, 0 before one came (a signal is the process's, as is this).
    private static int s_stoppedBy;

    /// <summary>
    /// Makes the exit code of a stopped data-parallel run the same on every rank: <paramref name="agree"/> gets this
    /// rank's signal's code (0 when the stop came from another rank) and returns the job's. mpirun reports the first
    /// rank to exit, so ranks that left with different codes would make the job's depend on which was quicker.
    /// </summary>
    public static void AgreeOnStopExitCode(Func<int, int> agree)
    {
        ArgumentNullException.ThrowIfNull(agree);
        s_stoppedBy = agree(s_stoppedBy);
    }

    /// <summary>
    /// Runs a command body: a user error (bad file, bad data, impossible setting) is one line on stderr and exit 1;
    /// SIGINT (Ctrl+C), SIGTERM and SIGHUP cancel the body's token, so training writes its checkpoint and stops, and
    /// the process exits with 130, 143 or 129. A second signal ends the process at once, as the signal does by default.
    /// </summary>
    public static int Run(ParseResult parse, Func<CancellationToken, int> body)
    {
        using var cts = new CancellationTokenSource();
        s_stoppedBy = 0;
        var registrations = new List<PosixSignalRegistration>();
        foreach (var (signal, exitCode) in Stops)
        {
            try
            {
                registrations.Add(PosixSignalRegistration.Create(signal, context =>
                {
                    // The first signal stops the run at its next step, checkpoint written; a second one ends the process at once.
                    if (cts.IsCancellationRequested) return;
                    context.Cancel = true;
                    Interlocked.CompareExchange(ref s_stoppedBy, exitCode, 0);
                    cts.Cancel();
                }));
            }
            catch (PlatformNotSupportedException)
            {
                // A signal this platform does not deliver (SIGHUP on some Windows hosts): nothing to handle.
            }
        }
        try
        {
            return body(cts.Token);
        }
        catch (OperationCanceledException e) when (cts.IsCancellationRequested || e is Distributed.StopRequestedException)
        {
            // A data-parallel rank that got no signal stops with the one that did.
            Console.Error.WriteLine(cts.IsCancellationRequested ? "cancelled" : e.Message);
            return s_stoppedBy == 0 ? Cancelled : s_stoppedBy;
        }
        catch (Exception e) when (e is IOException or InvalidDatasetException or ModelFileException or ArgumentException or InvalidOperationException or UnauthorizedAccessException
            or Onnx.OnnxFormatException or Onnx.UnsupportedOnnxModelException or Onnx.OnnxExportException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            if (parse.GetValue(Verbose)) Console.Error.WriteLine(e);
            return e is ArgumentException ? UsageError : UserError;
        }
        catch (OutOfMemoryException)
        {
            // The managed heap is full: under --memory-budget its cap, otherwise the machine's memory.
            Console.Error.WriteLine("error: out of memory" + (AppContext.GetData("GCHeapHardLimit") is ulong cap
                ? string.Create(CultureInfo.InvariantCulture, $": the managed heap reached its cap of {cap / (1024.0 * 1024.0):F0} MB under --memory-budget; give a larger --memory-budget or a smaller --batch.")
                : "; give a smaller --batch (or --batch auto with --memory-budget), or a smaller --size."));
            return UserError;
        }
        finally
        {
            foreach (var registration in registrations) registration.Dispose();
        }
    }

    /// <summary>Parses --lr: "auto" (null), a number, or "LOW:HIGH".</summary>
    public static (double? Single, (double Low, double High)? Range) ParseLr(string text)
    {
        if (text == "auto") return (null, null);
        var inv = CultureInfo.InvariantCulture;
        var parts = text.Split(':');
        if (parts.Length == 1 && double.TryParse(parts[0], NumberStyles.Float, inv, out var lr) && lr > 0) return (lr, null);
        if (parts.Length == 2 && double.TryParse(parts[0], NumberStyles.Float, inv, out var low) && double.TryParse(parts[1], NumberStyles.Float, inv, out var high) && low > 0 && high > low)
            return (null, (low, high));
        throw new ArgumentException($"--lr '{text}' is not 'auto', a positive number, or LOW:HIGH with 0 < LOW < HIGH.");
    }

    /// <summary>Parses a size such as 1GB, 512MB, 64KiB or a plain number of bytes.</summary>
    public static long ParseBytes(string text, string option)
    {
        var t = text.Trim().ToUpperInvariant().Replace("IB", "B", StringComparison.Ordinal);
        (string Suffix, long Factor)[] units = [("GB", 1L << 30), ("MB", 1L << 20), ("KB", 1L << 10), ("B", 1)];
        foreach (var (suffix, factor) in units)
        {
            if (!t.EndsWith(suffix, StringComparison.Ordinal)) continue;
            if (double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0) return (long)(v * factor);
            break;
        }
        if (long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) && bytes > 0) return bytes;
        throw new ArgumentException($"{option} '{text}' is not a size such as 1GB or 512MB.");
    }

    /// <summary>Parses a duration such as 10m, 90s, 1h or 1h30m.</summary>
    public static TimeSpan ParseDuration(string text, string option)
    {
        var m = System.Text.RegularExpressions.Regex.Match(text.Trim(), @"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$");
        if (!m.Success || text.Trim().Length == 0)
            throw new ArgumentException($"{option} '{text}' is not a duration such as 10m, 90s or 1h30m.");
        int Part(int i) => m.Groups[i].Success ? int.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture) : 0;
        var span = new TimeSpan(Part(1), Part(2), Part(3));
        return span > TimeSpan.Zero ? span : throw new ArgumentException($"{option} '{text}' must be longer than zero.");
    }

    /// <summary>Where Debian's dataset-fashion-mnist package puts the full set.</summary>
    public const string DebianFashionMnist = "/usr/share/datasets/fashion-mnist";

    /// <summary>
    /// The data folder: --data; else the FASTTRAIN_DATA environment variable; else the full Fashion-MNIST when Debian's
    /// dataset-fashion-mnist is installed; else the subset bundled with the tool and the repository.
    /// </summary>
    public static string DataFolder(string? given)
    {
        if (string.IsNullOrEmpty(given)) given = Environment.GetEnvironmentVariable("FASTTRAIN_DATA");
        if (!string.IsNullOrEmpty(given))
        {
            if (!Directory.Exists(given)) throw new DirectoryNotFoundException($"--data '{given}' does not exist.");
            return given;
        }
        if (IdxDataset.IsIdxFolder(DebianFashionMnist)) return DebianFashionMnist;
        return BundledData();
    }

    /// <summary>The bundled Fashion-MNIST subset: beside the tool, or in the repository above it.</summary>
    public static string BundledData()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null)
        {
            string candidate = Path.Combine(dir.FullName, "data", "fashion-mnist-mini");
            if (Directory.Exists(candidate)) return candidate;
            dir = dir.Parent;
        }
        throw new DirectoryNotFoundException("No --data given and the bundled data/fashion-mnist-mini was not found.");
    }

    public static void WriteJson(object value) => Console.WriteLine(JsonSerializer.Serialize(value));
}
