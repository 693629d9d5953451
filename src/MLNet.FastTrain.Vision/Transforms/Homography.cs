namespace MLNet.FastTrain.Vision.Transforms;

/// <summary>
/// A plane projective map (y, x) → ((a·y + b·x + c) / (g·y + h·x + 1), (d·y + e·x + f) / (g·y + h·x + 1)), fitted so
/// that the square's corners (−1, −1), (−1, 1), (1, −1), (1, 1) go to four given points.
/// </summary>
public readonly struct Homography
{
    private readonly double _a, _b, _c, _d, _e, _f, _g, _h;

    private Homography(double[] m) => (_a, _b, _c, _d, _e, _f, _g, _h) = (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]);

    /// <summary>The map sending the corners (−1,−1), (−1,1), (1,−1), (1,1), in that order, to <paramref name="targets"/> (y, x).</summary>
    public static Homography FromCorners(IReadOnlyList<(double Y, double X)> targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Count != 4) throw new ArgumentException("A homography needs four corner targets.", nameof(targets));
        (double Y, double X)[] corners = [(-1, -1), (-1, 1), (1, -1), (1, 1)];
        // Two equations per corner in the unknowns a..h: a y + b x + c − g y Y − h x Y = Y, and likewise for X.
        var m = new double[8, 9];
        for (int k = 0; k < 4; k++)
        {
            var (y, x) = corners[k];
            var (ty, tx) = targets[k];
            double[] rowY = [y, x, 1, 0, 0, 0, -y * ty, -x * ty, ty];
            double[] rowX = [0, 0, 0, y, x, 1, -y * tx, -x * tx, tx];
            for (int j = 0; j < 9; j++) { m[2 * k, j] = rowY[j]; m[2 * k + 1, j] = rowX[j]; }
        }
        return new Homography(Solve(m));
    }

    /// <summary>Maps a point.</summary>
    public (double Y, double X) Apply(double y, double x)
    {
        double w = _g * y + _h * x + 1;
        return ((_a * y + _b * x + _c) / w, (_d * y + _e * x + _f) / w);
    }

    /// <summary>The same map as a 3×3 <see cref="PixelMap"/> (its coordinates are whatever the corners' are).</summary>
    public PixelMap ToPixelMap() => new(_a, _b, _c, _d, _e, _f, _g, _h, 1);

    /// <summary>Gaussian elimination with partial pivoting on an 8×9 augmented matrix.</summary>
    private static double[] Solve(double[,] m)
    {
        const int N = 8;
        for (int col = 0; col < N; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < N; r++) if (Math.Abs(m[r, col]) > Math.Abs(m[pivot, col])) pivot = r;
            if (Math.Abs(m[pivot, col]) < 1e-12) throw new ArgumentException("The corner targets are degenerate (three in a line).");
            for (int j = 0; j <= N; j++) (m[col, j], m[pivot, j]) = (m[pivot, j], m[col, j]);
            for (int r = 0; r < N; r++)
            {
                if (r == col) continue;
                double factor = m[r, col] / m[col, col];
                for (int j = col; j <= N; j++) m[r, j] -= factor * m[col, j];
            }
        }
        var result = new double[N];
        for (int i = 0; i < N; i++) result[i] = m[i, N] / m[i, i];
        return result;
    }
}
