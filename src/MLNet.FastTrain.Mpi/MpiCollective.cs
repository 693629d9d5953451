using System.Globalization;
using System.Runtime.InteropServices;
using MLNet.FastTrain.Distributed;

namespace MLNet.FastTrain.Mpi;

/// <summary>MPI could not be loaded or a collective failed; the message says which and what to install.</summary>
public sealed class MpiException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

/// <summary>
/// The collectives over MPI, through Open MPI's C API (docs/design.md §11): <c>libmpi</c> is loaded when the first
/// <see cref="MpiCollective"/> starts, its predefined handles (which Open MPI exports as objects, not integers) are
/// resolved by name, and every operation runs on <c>MPI_COMM_WORLD</c>. One per process; dispose it to finalise MPI.
/// </summary>
public sealed unsafe class MpiCollective : ICollective, IDisposable
{
    private const int ThreadSerialized = 2;      // MPI_THREAD_SERIALIZED in Open MPI's mpi.h
    private static readonly void* InPlace = (void*)1; // MPI_IN_PLACE in Open MPI's mpi.h
    private static readonly string[] LibraryNames = ["libmpi.so.40", "libmpi.so"];
    private static readonly Lock Gate = new();
    private static MpiCollective? s_current;

    private readonly nint _world, _float, _byte, _sum;
    private readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> _allreduce;
    private readonly delegate* unmanaged<void*, int, nint, int, nint, int> _bcast;
    private readonly delegate* unmanaged<nint, int> _barrier;
    private readonly delegate* unmanaged<nint, int, int> _abort;
    private readonly delegate* unmanaged<int> _finalize;
    private bool _disposed;

    private MpiCollective(nint library)
    {
        // A function's address, or a predefined handle: Open MPI's MPI_COMM_WORLD is &ompi_mpi_comm_world, and so on.
        nint Export(string name) => NativeLibrary.TryGetExport(library, name, out nint address) ? address
            : throw new MpiException($"The loaded libmpi has no '{name}': it is not Open MPI 4 or later (MPICH and MS-MPI use another ABI). Install openmpi-bin.");
        (_world, _float, _byte, _sum) = (Export("ompi_mpi_comm_world"), Export("ompi_mpi_float"), Export("ompi_mpi_byte"), Export("ompi_mpi_op_sum"));
        _allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        _bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        _barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        _abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        _finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        var initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        var init = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        var rank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        var size = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        int flag = 0, provided = 0, r = 0, n = 0;
        Check(initialized(&flag), "MPI_Initialized");
        if (flag == 0) Check(init(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
        Check(rank(_world, &r), "MPI_Comm_rank");
        Check(size(_world, &n), "MPI_Comm_size");
        (Rank, Size) = (r, n);
    }

    /// <summary>
    /// Starts MPI in this process (under <c>mpirun</c>, every rank does) and returns the process's collective; a
    /// process started without <c>mpirun</c> is a world of one.
    /// </summary>
    /// <exception cref="MpiException">Open MPI's library is not installed, or MPI failed to start.</exception>
    public static MpiCollective Start()
    {
        lock (Gate)
        {
            if (s_current is { _disposed: false }) return s_current;
            if (s_current is not null) throw new MpiException("MPI was finalised in this process; it cannot start again.");
            nint library = 0;
            foreach (var name in LibraryNames)
                if (NativeLibrary.TryLoad(name, out library)) break;
            if (library == 0)
                throw new MpiException("Open MPI's libmpi (libmpi.so.40) was not found. Install Open MPI (Debian and Ubuntu: apt-get install openmpi-bin) and start the ranks with mpirun.");
            return s_current = new MpiCollective(library);
        }
    }

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int Size { get; }

    /// <summary>
    /// How long a collective may wait for the other ranks before this rank ends the whole job (MPI_Abort) with a
    /// message naming the operation: a rank that died is caught by mpirun, but one that hangs would hold every other
    /// rank forever. Default 10 minutes; <see cref="Timeout.InfiniteTimeSpan"/> waits for ever.
    /// </summary>
    public TimeSpan CollectiveTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <inheritdoc />
    public void AllReduceSum(Span<float> values)
    {
        using var watch = Begin("an allreduce");
        fixed (float* p = values) Check(_allreduce(InPlace, p, values.Length, _float, _sum, _world), "MPI_Allreduce");
    }

    /// <inheritdoc />
    public void Broadcast(Span<byte> values, int root)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        using var watch = Begin("a broadcast");
        fixed (byte* p = values) Check(_bcast(p, values.Length, _byte, root, _world), "MPI_Bcast");
    }

    /// <inheritdoc />
    public void Barrier()
    {
        using var watch = Begin("a barrier");
        Check(_barrier(_world), "MPI_Barrier");
    }

    // Starts a collective: refused after Dispose, and watched by a timer that ends the job if it has not returned by the timeout.
    private Timer? Begin(string operation)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (CollectiveTimeout == Timeout.InfiniteTimeSpan) return null;
        return new Timer(_ =>
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"error: rank {Rank} of {Size} waited {CollectiveTimeout.TotalSeconds:F0} s in {operation} for the other ranks; one has hung or lost its connection. Ending the job."));
            Abort(1);
        }, null, CollectiveTimeout, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (MPI_Abort): what a rank does when another has died.</summary>
    public void Abort(int exitCode) => _ = _abort(_world, exitCode);

    /// <summary>Finalises MPI (every rank must): no collective runs afterwards.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Check(_finalize(), "MPI_Finalize");
    }

    private static void Check(int code, string function)
    {
        if (code != 0) throw new MpiException(string.Create(CultureInfo.InvariantCulture, $"{function} failed with MPI error {code}."));
    }
}
