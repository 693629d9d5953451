using MLNet.FastTrain.Engine.Kernels;
using Xunit;

namespace MLNet.FastTrain.Engine.Tests;

[Trait("Category", "Kernel")]
public class GemmTests
{
    public static TheoryData<int, int, int, bool, bool> Shapes()
    {
        var data = new TheoryData<int, int, int, bool, bool>();
        foreach (var (m, n, k) in new[] { (1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 64, 64), (5, 130, 3), (129, 7, 65), (70, 80, 90) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    data.Add(m, n, k, ta, tb);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gemm_matches_the_triple_loop(int m, int n, int k, bool transA, bool transB)
    {
        var g = new Generator((ulong)(m * 1000 + n * 10 + k));
        var a = Enumerable.Range(0, m * k).Select(_ => (float)g.NextNormal()).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => (float)g.NextNormal()).ToArray();
        var c0 = Enumerable.Range(0, m * n).Select(_ => (float)g.NextNormal()).ToArray();
        foreach (bool accumulate in new[] { false, true })
        {
            var c = (float[])c0.Clone();
            Gemm.Multiply<float>(transA, transB, m, n, k, a, b, c, accumulate);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double sum = accumulate ? c0[i * n + j] : 0;
                    for (int p = 0; p < k; p++)
                        sum += (double)(transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                    Assert.True(Math.Abs(c[i * n + j] - sum) <= 1e-4 * (1 + Math.Abs(sum)), $"C[{i},{j}] = {c[i * n + j]}, expected {sum}");
                }
        }
    }

    public static TheoryData<string, int, int, int, bool, bool> PathShapes()
    {
        var data = new TheoryData<string, int, int, int, bool, bool>();
        foreach (var path in new[] { "Scalar", "V128", "V256", "V512" })
            foreach (var (m, n, k) in new[] { (1, 1, 1), (8, 32, 256), (9, 33, 257), (17, 70, 300), (64, 5, 40), (3, 100, 600), (96, 32, 16), (131, 70, 300) })
                foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
                    data.Add(path, m, n, k, ta, tb);
        return data;
    }

    /// <summary>Every micro-kernel width against the triple loop, with tails in m, n and k (k past one 256-block).</summary>
    [Theory]
    [MemberData(nameof(PathShapes))]
    public unsafe void Sgemm_every_vector_width_matches_the_triple_loop(string path, int m, int n, int k, bool transA, bool transB)
    {
        var g = new Generator((ulong)(m * 7919 + n * 31 + k));
        var a = Enumerable.Range(0, m * k).Select(_ => (float)g.NextNormal()).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => (float)g.NextNormal()).ToArray();
        var c0 = Enumerable.Range(0, m * n).Select(_ => (float)g.NextNormal()).ToArray();
        var p = Enum.Parse<Sgemm.Path>(path);
        foreach (bool accumulate in new[] { false, true })
        {
            var c = (float[])c0.Clone();
            fixed (float* pa = a, pb = b, pc = c)
                Sgemm.Multiply(transA, transB, m, n, k, pa, transA ? m : k, pb, transB ? k : n, pc, n, accumulate, maxThreads: 2, forcePath: p);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double sum = accumulate ? c0[i * n + j] : 0;
                    for (int q = 0; q < k; q++)
                        sum += (double)(transA ? a[q * m + i] : a[i * k + q]) * (transB ? b[j * k + q] : b[q * n + j]);
                    Assert.True(Math.Abs(c[i * n + j] - sum) <= 1e-4 * (1 + Math.Abs(sum)), $"{path}: C[{i},{j}] = {c[i * n + j]}, expected {sum}");
                }
        }
    }

    [Fact]
    public unsafe void Sgemm_gives_identical_bits_with_one_or_two_threads_per_block_split()
    {
        // Each element of C is summed by one thread in a fixed k order, so splitting rows across threads
        // cannot change a single bit.
        var g = new Generator(4);
        int m = 300, n = 200, k = 700;
        var a = Enumerable.Range(0, m * k).Select(_ => (float)g.NextNormal()).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => (float)g.NextNormal()).ToArray();
        var one = new float[m * n];
        var two = new float[m * n];
        fixed (float* pa = a, pb = b, p1 = one, p2 = two)
        {
            Sgemm.Multiply(false, false, m, n, k, pa, k, pb, n, p1, n, false, maxThreads: 1);
            Sgemm.Multiply(false, false, m, n, k, pa, k, pb, n, p2, n, false, maxThreads: 2);
        }
        Assert.Equal(one, two);
    }

    /// <summary>
    /// scripts/test.sh reruns the kernel tests with the runtime's DOTNET_EnableAVX512=0 and DOTNET_EnableAVX2=0; this
    /// fails if a switch was silently ignored, so those runs really exercise the narrower paths.
    /// </summary>
    [Fact]
    public void Vector_width_switches_take_effect()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0")
        {
            Assert.False(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
            Assert.NotEqual(Sgemm.Path.V512, Sgemm.BestPath);
        }
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0")
        {
            Assert.False(System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated);
            Assert.True(Sgemm.BestPath is Sgemm.Path.V128 or Sgemm.Path.Scalar);
        }
        Assert.True(Enum.IsDefined(Sgemm.BestPath));
    }

    [Fact]
    public void Gemm_rejects_short_operands_and_handles_empty_k()
    {
        Assert.Throws<ArgumentException>(() => Gemm.Multiply<float>(false, false, 2, 2, 2, new float[3], new float[4], new float[4], false));
        var c = new float[] { 1, 2 };
        Gemm.Multiply<float>(false, false, 1, 2, 0, [], [], c, accumulate: true);
        Assert.Equal(new float[] { 1, 2 }, c);
        Gemm.Multiply<float>(false, false, 1, 2, 0, [], [], c, accumulate: false);
        Assert.Equal(new float[] { 0, 0 }, c);
    }

    [Fact]
    public void Gemm_results_do_not_depend_on_the_run()
    {
        var g = new Generator(9);
        var a = Enumerable.Range(0, 200 * 300).Select(_ => (float)g.NextNormal()).ToArray();
        var b = Enumerable.Range(0, 300 * 100).Select(_ => (float)g.NextNormal()).ToArray();
        var c1 = new float[200 * 100];
        var c2 = new float[200 * 100];
        Gemm.Multiply<float>(false, true, 200, 100, 300, a, b.AsSpan(0, 300 * 100), c1, false);
        Gemm.Multiply<float>(false, true, 200, 100, 300, a, b.AsSpan(0, 300 * 100), c2, false);
        Assert.Equal(c1, c2);
    }
}

[Trait("Category", "Kernel")]
public class SpecialFunctionTests
{
    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.52049987781304654)]
    [InlineData(1.0, 0.84270079294971487)]
    [InlineData(2.0, 0.99532226501895273)]
    [InlineData(-1.5, -0.96610514647531073)]
    [InlineData(3.0, 0.99997790950300136)]
    public void Erf_matches_tabulated_values(double x, double expected) =>
        Assert.Equal(expected, SpecialFunctions.Erf(x), 14);

    [Theory]
    [InlineData(3.0, 2.2090496998585441e-05)]
    [InlineData(5.0, 1.5374597944280349e-12)]
    [InlineData(-2.0, 1.9953222650189527)]
    public void Erfc_keeps_relative_accuracy_in_the_tail(double x, double expected) =>
        Assert.True(Math.Abs(SpecialFunctions.Erfc(x) - expected) <= 1e-13 * expected, $"erfc({x}) = {SpecialFunctions.Erfc(x):R}");

    [Fact]
    public void Normal_cdf_is_symmetric_and_continuous_at_the_branch_point()
    {
        Assert.Equal(0.5, SpecialFunctions.NormalCdf(0), 15);
        Assert.Equal(1.0, SpecialFunctions.NormalCdf(1.3) + SpecialFunctions.NormalCdf(-1.3), 14);
        double below = SpecialFunctions.Erfc(2.5 - 1e-12), above = SpecialFunctions.Erfc(2.5 + 1e-12);
        Assert.True(Math.Abs(below - above) < 1e-13);
        Assert.True(double.IsNaN(SpecialFunctions.Erfc(double.NaN)));
        Assert.Equal(0.0, SpecialFunctions.Erfc(double.PositiveInfinity));
    }
}

/// <summary>
/// Stride-1 convolutions run as implicit GEMMs over the padded image (<see cref="ShiftedConv"/>); they must agree
/// with the column-matrix path, which the torch reference vectors and the float64 gradient checks cover.
/// </summary>
[Trait("Category", "Kernel")]
public class ShiftedConvTests
{
    public static TheoryData<int, int, int, int, int, int, int, int, int, int> Shapes() => new()
    {
        // batch, channels, outputs, height, width, kernel, stride, padding, dilation, groups
        { 2, 1, 16, 28, 28, 3, 1, 1, 1, 1 },
        { 3, 16, 16, 28, 28, 3, 1, 1, 1, 1 },
        { 2, 32, 64, 26, 26, 3, 1, 0, 1, 1 },
        { 2, 64, 64, 7, 7, 3, 1, 1, 1, 1 },
        { 1, 3, 5, 9, 13, 5, 1, 2, 1, 1 },
        { 2, 5, 11, 10, 7, 3, 1, 2, 2, 1 },
        { 1, 4, 6, 6, 5, 2, 1, 0, 1, 2 },
        { 2, 7, 9, 1, 40, 3, 1, 1, 1, 1 },
        { 1, 2, 3, 3, 3, 3, 1, 1, 1, 1 },
        // long rows with output and tap counts that do not fill the weight gradient's 4 × 4 blocks
        { 2, 3, 5, 20, 20, 3, 1, 1, 1, 1 },
        { 1, 4, 6, 30, 12, 3, 1, 1, 1, 2 },
        // strided: the phase layout (the input gradient stays on the column-matrix path)
        { 2, 16, 32, 28, 28, 3, 2, 1, 1, 1 },
        { 2, 16, 32, 28, 28, 2, 2, 0, 1, 1 },
        { 1, 3, 4, 11, 9, 3, 2, 0, 1, 1 },
        { 1, 2, 5, 13, 10, 5, 3, 2, 1, 1 },
        { 1, 4, 4, 12, 12, 3, 2, 2, 2, 2 },
        { 2, 3, 7, 40, 41, 3, 2, 1, 1, 1 },
        // few taps, rows of 16 or more outputs: the direct forward (output counts on and off its blocks of 8, rows
        // that end mid-vector, 25 taps, dilation, groups of one channel, stride 2 over the phases)
        { 1, 1, 32, 28, 28, 3, 1, 0, 1, 1 },
        { 2, 1, 7, 20, 17, 3, 1, 1, 1, 1 },
        { 1, 1, 9, 30, 33, 5, 1, 2, 1, 1 },
        { 1, 1, 5, 24, 24, 3, 1, 2, 2, 1 },
        { 1, 4, 8, 30, 20, 3, 1, 1, 1, 4 },
        { 1, 3, 12, 20, 16, 3, 1, 1, 1, 1 },
        { 1, 2, 5, 40, 41, 3, 2, 1, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_and_gradients_match_the_column_matrix_path(int n, int c, int o, int h, int w, int k, int stride, int p, int d, int groups)
    {
        Assert.True(ShiftedConv.IsSupported || !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
        var g = new Generator((ulong)(n * 1000 + c * 100 + o * 10 + h + stride));
        var x = Tensor.Normal([n, c, h, w], generator: g);
        var weight = Tensor.Normal([o, c / groups, k, k], generator: g);
        var bias = Tensor.Normal([o], generator: g);
        var upstream = Tensor.Normal(Conv(x, weight, bias, stride, p, d, groups, shifted: false).Y.Shape.ToArray(), generator: g);
        var reference = Conv(x, weight, bias, stride, p, d, groups, shifted: false, upstream);
        var shifted = Conv(x, weight, bias, stride, p, d, groups, shifted: true, upstream);
        AssertSameResults(reference, shifted);
    }

    [Fact]
    public void Handles_what_it_can_and_input_gradients_of_stride_one_whose_padding_fits()
    {
        if (!ShiftedConv.IsSupported) return;
        Assert.True(ShiftedConv.Handles(new ConvGeometry(4, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1)));
        Assert.True(ShiftedConv.Handles(new ConvGeometry(4, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1)));    // stride 2: phases
        Assert.False(ShiftedConv.HandlesInputGradient(new ConvGeometry(4, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1)));
        Assert.False(ShiftedConv.Handles(new ConvGeometry(4, 8, 8, 3, 3, 1, 2, 1, 1, 1, 1)));   // unequal strides
        Assert.False(ShiftedConv.Handles(new ConvGeometry(4, 8, 8, 1, 1, 1, 1, 0, 0, 1, 1)));   // pointwise: a plain GEMM
        Assert.False(ShiftedConv.Handles(new ConvGeometry(4, 8, 8, 1, 1, 2, 2, 0, 0, 1, 1)));   // strided pointwise: subsample + GEMM
        Assert.True(ShiftedConv.HandlesInputGradient(new ConvGeometry(4, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1)));
        Assert.False(ShiftedConv.HandlesInputGradient(new ConvGeometry(4, 8, 8, 3, 3, 1, 1, 3, 3, 1, 1))); // padding > k − 1
    }

    /// <summary>
    /// Inside a scope, gradient buffers come from the pool holding whatever they held before: every path must
    /// overwrite or zero what it adds into (the column-matrix input gradient zeroes each thread's images itself).
    /// </summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(2, true)]
    public void Gradients_do_not_depend_on_what_pooled_buffers_held(int stride, bool shifted)
    {
        var g = new Generator(7);
        var x = Tensor.Normal([3, 4, 12, 12], generator: g);
        var weight = Tensor.Normal([6, 4, 3, 3], generator: g);
        var bias = Tensor.Normal([6], generator: g);
        var upstream = Tensor.Normal(Conv(x, weight, bias, stride, 1, 1, 1, shifted).Y.Shape.ToArray(), generator: g);
        var expected = Conv(x, weight, bias, stride, 1, 1, 1, shifted, upstream);
        using (TensorScope.Begin())
        {
            for (int i = 0; i < 4; i++)
                foreach (var shape in new[] { x.Shape.ToArray(), upstream.Shape.ToArray(), weight.Shape.ToArray(), bias.Shape.ToArray() })
                    Tensor.Full(shape, double.NaN);
        }
        using (TensorScope.Begin())
        {
            AssertSameResults(expected, Conv(x, weight, bias, stride, 1, 1, 1, shifted, upstream));
        }
    }

    [Fact]
    public void The_direct_forward_takes_few_taps_over_rows_a_vector_wide()
    {
        if (!ShiftedConv.IsSupported) return;
        Assert.True(ShiftedConv.RunsDirect(ShiftedConv.PlanFor(new ConvGeometry(1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1))));    // the stem
        Assert.True(ShiftedConv.RunsDirect(ShiftedConv.PlanFor(new ConvGeometry(3, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1))));    // 27 taps
        Assert.False(ShiftedConv.RunsDirect(ShiftedConv.PlanFor(new ConvGeometry(4, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1))));   // 36 taps
        Assert.False(ShiftedConv.RunsDirect(ShiftedConv.PlanFor(new ConvGeometry(1, 14, 14, 3, 3, 1, 1, 0, 0, 1, 1))));   // rows of 12
    }

    private static (Tensor Y, Tensor? Gx, Tensor? Gw, Tensor? Gb) Conv(Tensor x0, Tensor w0, Tensor b0, int stride, int p, int d, int groups, bool shifted, Tensor? upstream = null)
    {
        var x = x0.Detach();
        var w = w0.Detach();
        var b = b0.Detach();
        x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
        ShiftedConv.t_disabled = !shifted;
        try
        {
            var y = Functional.Conv2d(x, w, b, stride: (stride, stride), padding: (p, p), dilation: (d, d), groups: groups);
            if (upstream is null) return (y, null, null, null);
            Functional.Sum(y * upstream).Backward();
            return (y, x.Grad, w.Grad, b.Grad);
        }
        finally
        {
            ShiftedConv.t_disabled = false;
        }
    }

    private static void AssertSameResults((Tensor Y, Tensor? Gx, Tensor? Gw, Tensor? Gb) expected, (Tensor Y, Tensor? Gx, Tensor? Gw, Tensor? Gb) actual)
    {
        AssertClose(expected.Y, actual.Y, "output");
        AssertClose(expected.Gx!, actual.Gx!, "input gradient");
        AssertClose(expected.Gw!, actual.Gw!, "weight gradient");
        AssertClose(expected.Gb!, actual.Gb!, "bias gradient");
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var e = expected.Span<float>();
        var a = actual.Span<float>();
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= 1e-4f * (1 + Math.Abs(e[i])), $"{what}[{i}]: {a[i]}, expected {e[i]}");
    }
}

[Trait("Category", "Kernel")]
public class ColumnMatrixTests
{
    /// <summary>
    /// Rows wide enough for the vectorised stride-2 gather (float32) against the same convolution in float64, which
    /// gathers one element at a time.
    /// </summary>
    [Theory]
    [InlineData(3, 1, 70, 0)]
    [InlineData(3, 1, 67, 1)]
    [InlineData(1, 0, 81, 0)]
    [InlineData(5, 2, 64, 1)]
    public void Stride_two_unfold_matches_float64(int kernel, int padding, int width, int offsetPad)
    {
        var g = new Generator((ulong)(kernel * 100 + width));
        var x = Tensor.Normal([2, 3, 5, width], generator: g, dtype: DType.Float64);
        var w = Tensor.Normal([4, 3, kernel, kernel], generator: g, dtype: DType.Float64);
        var pad = (padding, padding + offsetPad);
        var expected = Functional.Conv2d(x, w, stride: (2, 2), padding: pad);
        var actual = Functional.Conv2d(x.To(DType.Float32), w.To(DType.Float32), stride: (2, 2), padding: pad);
        var e = expected.Span<double>();
        var a = actual.Span<float>();
        Assert.Equal(e.Length, a.Length);
        for (int i = 0; i < e.Length; i++) Assert.True(Math.Abs(e[i] - a[i]) <= 1e-4 * (1 + Math.Abs(e[i])), $"y[{i}] = {a[i]}, expected {e[i]}");
    }
}

/// <summary>The worker team is one per process: its tests run while no other test class holds it.</summary>
[CollectionDefinition(nameof(WorkerTeamTests), DisableParallelization = true)]
public class WorkerTeamRunsAlone;

[Trait("Category", "Kernel")]
[Collection(nameof(WorkerTeamTests))]
public class WorkerTeamTests
{
    [Fact]
    public void Every_part_runs_once_and_a_part_on_a_worker_runs_elsewhere()
    {
        int elsewhere = 0;
        for (int round = 0; round < 50; round++)
        {
            var seen = new int[3];
            var threads = new int[3];
            WorkerTeam.Run(3, part =>
            {
                Interlocked.Increment(ref seen[part]);
                threads[part] = Environment.CurrentManagedThreadId;
            });
            Assert.Equal(new[] { 1, 1, 1 }, seen);
            Assert.Equal(Environment.CurrentManagedThreadId, threads[0]);
            if (threads[1] != threads[0]) elsewhere++;
        }
        Assert.Equal(50, elsewhere);
    }

    [Fact]
    public void A_failing_part_throws_on_the_caller_and_the_team_keeps_working()
    {
        var e = Assert.Throws<InvalidOperationException>(() => WorkerTeam.Run(2, part =>
        {
            if (part == 1) throw new InvalidOperationException("part 1 failed");
        }));
        Assert.Equal("part 1 failed", e.Message);
        int sum = 0;
        WorkerTeam.Run(2, part => Interlocked.Add(ref sum, part + 1));
        Assert.Equal(3, sum);
    }

    [Fact]
    public void Regions_opened_from_two_threads_at_once_both_complete_with_the_same_sums()
    {
        // One thread holds the team while the other's regions go to the thread pool; the sums must not care.
        var expected = Enumerable.Range(0, 4).Select(part => (long)part * 1000 + 499500).ToArray();
        int wrong = 0;
        var threads = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            for (int round = 0; round < 200; round++)
            {
                var sums = new long[4];
                WorkerTeam.Run(4, part => { for (int i = 0; i < 1000; i++) sums[part] += part + i; });
                if (!sums.SequenceEqual(expected)) Interlocked.Increment(ref wrong);
            }
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void A_region_with_a_static_body_and_tuple_state_allocates_nothing()
    {
        var sums = new long[2];
        void Regions(int count)
        {
            for (int i = 0; i < count; i++)
                WorkerTeam.Run(2, (sums, i), static (s, part) => s.sums[part] += s.i);
        }
        Regions(100);                                                             // workers started, code jitted
        long before = TeamAllocations.Read();
        const int Count = 10_000;
        Regions(Count);
        long allocated = TeamAllocations.Read() - before;
        // A region that allocated its bookkeeping or a closure would add over 100 bytes per region.
        Assert.True(allocated < 1_000, $"{Count} regions allocated {allocated:N0} bytes");
        long expected = 100L * 99 / 2 + (long)Count * (Count - 1) / 2;          // Σ i over both calls, in each part
        Assert.Equal(new[] { expected, expected }, sums);
    }

    [Fact]
    public void A_region_opened_inside_a_region_completes_every_part_without_waiting_for_the_team()
    {
        var inner = new int[2, 4];
        WorkerTeam.Run(2, outer => WorkerTeam.Run(4, part => Interlocked.Increment(ref inner[outer, part])));
        foreach (int count in inner) Assert.Equal(1, count);
    }
}
