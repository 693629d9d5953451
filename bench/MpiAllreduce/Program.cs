// The cost of a sum-allreduce of float buffers between the ranks of an MPI job, the figure docs/performance.md's model
// of data-parallel speed-up starts from. Run under mpirun, e.g. on this machine over shared memory:
//   mpirun -np 2 dotnet bench/MpiAllreduce/bin/Release/net10.0/MpiAllreduce.dll [REPEATS]
// and over TCP on the loopback interface:
//   mpirun -np 2 --mca btl tcp,self --mca btl_tcp_if_include lo dotnet .../MpiAllreduce.dll
// Every repeat starts after a barrier, so a slower rank's lateness is not counted; rank 0 prints one line per size:
// megabytes, the median milliseconds, and the megabytes each rank contributes per second.
using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Mpi;

using var mpi = MpiCollective.Start();
int repeats = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;
if (mpi.Rank == 0) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ranks {mpi.Size}; size_mb median_ms mb_per_s (median of {repeats})"));
foreach (double megabytes in new[] { 0.25, 1, 4, 16, 26.3, 64 })
{
    var values = new float[(int)(megabytes * 1024 * 1024 / sizeof(float))];
    values.AsSpan().Fill(mpi.Rank + 1);
    mpi.AllReduceSum(values); // the first call sets up the connection
    var times = new double[repeats];
    for (int i = 0; i < repeats; i++)
    {
        mpi.Barrier();
        long start = Stopwatch.GetTimestamp();
        mpi.AllReduceSum(values);
        times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }
    Array.Sort(times);
    double median = times[repeats / 2];
    if (mpi.Rank == 0) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{megabytes,6:G4} {median,9:F3} {megabytes / (median / 1000),9:F0}"));
}
