namespace MLNet.FastTrain.Engine.Kernels;

/// <summary>Special functions that .NET's <see cref="Math"/> lacks, accurate to double precision.</summary>
internal static class SpecialFunctions
{
    private const double TwoOverSqrtPi = 1.1283791670955126;
    private const double InvSqrt2 = 0.7071067811865476;
    private const double InvSqrt2Pi = 0.3989422804014327;

    /// <summary>The standard normal CDF, Φ(x) = ½·erfc(−x/√2).</summary>
    public static double NormalCdf(double x) => 0.5 * Erfc(-x * InvSqrt2);

    /// <summary>The standard normal density, φ(x) = e^(−x²/2)/√(2π).</summary>
    public static double NormalPdf(double x) => InvSqrt2Pi * Math.Exp(-0.5 * x * x);

    /// <summary>The error function.</summary>
    public static double Erf(double x) => Math.Abs(x) < 2.5 ? ErfSeries(x) : Math.CopySign(1.0 - ErfcContinuedFraction(Math.Abs(x)), x);

    /// <summary>The complementary error function, 1 − erf(x), without cancellation for large x.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        if (x < 2.5 && x > -2.5) return 1.0 - ErfSeries(x);
        return x > 0 ? ErfcContinuedFraction(x) : 2.0 - ErfcContinuedFraction(-x);
    }

    // erf(x) = 2/√π · Σ (−1)ⁿ x^(2n+1) / (n! (2n+1)); for |x| < 2.5 the terms stay below e^(x²) ≈ 520,
    // so about 14 significant digits survive.
    private static double ErfSeries(double x)
    {
        double x2 = x * x, term = x, sum = x;
        for (int n = 1; n < 200; n++)
        {
            term *= -x2 / n;
            double add = term / (2 * n + 1);
            sum += add;
            if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
        }
        return TwoOverSqrtPi * sum;
    }

    // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))) for x ≥ 2.5, evaluated with
    // the modified Lentz algorithm.
    private static double ErfcContinuedFraction(double x)
    {
        if (double.IsPositiveInfinity(x)) return 0.0;
        const double Tiny = 1e-300;
        double f = x, c = x, d = 0.0;
        for (int n = 1; n < 500; n++)
        {
            double a = n * 0.5;
            d = x + a * d;
            d = Math.Abs(d) < Tiny ? 1.0 / Tiny : 1.0 / d;
            c = x + a / c;
            if (Math.Abs(c) < Tiny) c = Tiny;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1.0) < 1e-16) break;
        }
        return Math.Exp(-x * x) / (f * Math.Sqrt(Math.PI));
    }
}
