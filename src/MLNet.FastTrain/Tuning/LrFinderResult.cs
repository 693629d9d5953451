using System.Globalization;
using System.Text;

namespace MLNet.FastTrain.Tuning;

/// <summary>Which rule turns the loss curve into a learning rate.</summary>
public enum LrSuggestion
{
    /// <summary>
    /// fastai's default: the longest stretch over which the smoothed loss keeps falling (longest decreasing
    /// subsequence), and a point a little past the first third of it — robust on noisy curves.
    /// </summary>
    Valley,

    /// <summary>Where the loss falls fastest: the most negative slope of loss against log learning rate.</summary>
    Steep,

    /// <summary>The learning rate of the lowest loss, divided by 10 (the original rule of thumb).</summary>
    Minimum,

    /// <summary>
    /// Walks back from the end of the curve until the slope settles (within a threshold over a window), a rule that
    /// stays away from the divergence cliff.
    /// </summary>
    Slide,

    /// <summary>
    /// The default: <see cref="Valley"/>, raised towards <see cref="Minimum"/> (the lowest loss's rate / 10) by at most
    /// a factor of 10. A range test of 100 steps on a network whose loss falls over several decades (wide nets, fresh
    /// nets on Fashion-MNIST) gives a valley so long that its first third lies 10–50× below the rates that train best;
    /// the minimum alone is no cure, since such curves end in a shallow bottom whose lowest point wanders over a decade
    /// from one seed to the next. Where the valley is short, the valley stands.
    /// </summary>
    Combined,

    /// <summary>
    /// Smith's check by training: short one-cycle runs (an epoch, at most 300 steps) at the valley, the combined rule's
    /// rate and their geometric middle, from the same start, scored by accuracy on a fixed validation subset; the
    /// lowest rate within one standard error of the best wins. Three short trainings more than the other rules cost,
    /// and it needs validation data (without it, <see cref="Combined"/>). Not one of
    /// <see cref="LrFinderResult.Suggestions"/>: <see cref="LrFinder.Suggest"/> computes it.
    /// </summary>
    Ranked,

    /// <summary>
    /// The default: <see cref="Ranked"/> when an epoch of the training data has at most
    /// <see cref="LrFinder.Options.RankingSteps"/> (300) steps, so that each short run covers a whole epoch, and
    /// <see cref="Combined"/> on longer epochs, where runs of 300 steps rank the rates too low (the best rate of a run
    /// grows with its length) and three whole epochs would cost too much; before SGDR
    /// (<see cref="LrFinder.Options.RestartsAtPeak"/>) the geometric middle of the valley and the combined rate there.
    /// Measured against a grid of one-epoch runs (docs/default-recipe.md). Not one of
    /// <see cref="LrFinderResult.Suggestions"/>: <see cref="LrFinder.Suggest"/> computes it.
    /// </summary>
    Auto,
}

/// <summary>The curve of a range test and the learning rates read off it.</summary>
public sealed class LrFinderResult
{
    internal LrFinderResult(IReadOnlyList<LrPoint> points, bool stoppedEarly, LrFinder.Options options, double seconds)
    {
        Points = points;
        Seconds = seconds;
        StoppedEarly = stoppedEarly;
        // fastai drops the first tenth (warm-up noise) and the last five points (the blow-up) before suggesting.
        int skipStart = options.Iterations / 10, skipEnd = 5;
        var usable = points.Count - skipStart - skipEnd >= 5 ? points.Skip(skipStart).Take(points.Count - skipStart - skipEnd).ToList() : points.ToList();
        var lrs = usable.Select(p => p.LearningRate).ToArray();
        var losses = usable.Select(p => p.SmoothLoss).ToArray();
        var suggestions = new Dictionary<LrSuggestion, double>();
        if (lrs.Length >= 2)
        {
            suggestions[LrSuggestion.Valley] = ValleyRule(lrs, losses);
            suggestions[LrSuggestion.Steep] = SteepRule(lrs, losses);
            suggestions[LrSuggestion.Minimum] = lrs[Array.IndexOf(losses, losses.Min())] / 10;
            suggestions[LrSuggestion.Slide] = SlideRule(lrs, losses);
            double valley = suggestions[LrSuggestion.Valley];
            suggestions[LrSuggestion.Combined] = Math.Max(valley, Math.Min(suggestions[LrSuggestion.Minimum], 10 * valley));
        }
        Suggestions = suggestions;
        if (lrs.Length < 2)
        {
            Warning = "The range test stopped after too few steps to suggest anything: the loss diverged almost at once. Lower StartLr, or check the data and model.";
        }
        else
        {
            double first = losses[0], min = losses.Min();
            if (!(min < first * 0.95))
                Warning = string.Create(CultureInfo.InvariantCulture,
                    $"The loss never fell clearly (from {first:G4} to at best {min:G4}): the curve has no valley, so the suggestions are unreliable. Try a wider range, more iterations or a smaller batch.");
        }
    }

    /// <summary>The curve as bytes, for data-parallel ranks to share the one range test rank 0 ran.</summary>
    internal byte[] ToBytes()
    {
        var values = new double[2 + 3 * Points.Count];
        (values[0], values[1]) = (Seconds, StoppedEarly ? 1 : 0);
        for (int i = 0; i < Points.Count; i++)
            (values[2 + 3 * i], values[3 + 3 * i], values[4 + 3 * i]) = (Points[i].LearningRate, Points[i].Loss, Points[i].SmoothLoss);
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
    }

    /// <summary>The result <see cref="ToBytes"/> wrote, its suggestions read off again with <paramref name="options"/>.</summary>
    internal static LrFinderResult FromBytes(byte[] bytes, LrFinder.Options options)
    {
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes);
        if (bytes.Length % 8 != 0 || values.Length < 2 || (values.Length - 2) % 3 != 0)
            throw new ArgumentException($"{bytes.Length} bytes are not a range test's curve.", nameof(bytes));
        var points = new LrPoint[(values.Length - 2) / 3];
        for (int i = 0; i < points.Length; i++) points[i] = new LrPoint(values[2 + 3 * i], values[3 + 3 * i], values[4 + 3 * i]);
        return new LrFinderResult(points, values[1] != 0, options, values[0]);
    }

    /// <summary>The recorded points, in order.</summary>
    public IReadOnlyList<LrPoint> Points { get; }

    /// <summary>How long the test took, restoring the model and optimizer included.</summary>
    public double Seconds { get; }

    /// <summary>True when the test stopped because the loss diverged before the last iteration.</summary>
    public bool StoppedEarly { get; }

    /// <summary>The suggestion of each rule.</summary>
    public IReadOnlyDictionary<LrSuggestion, double> Suggestions { get; }

    /// <summary>The default suggestion (<see cref="LrSuggestion.Combined"/>), or NaN when there is none.</summary>
    public double Suggested => Suggestions.GetValueOrDefault(LrSuggestion.Combined, double.NaN);

    /// <summary>Set when the curve shows no clear valley, saying why the suggestions may mislead.</summary>
    public string? Warning { get; }

    private static double ValleyRule(double[] lrs, double[] losses)
    {
        // Longest strictly decreasing subsequence ending at each point (O(n²), n ≤ a few hundred).
        int n = losses.Length;
        var length = new int[n];
        int bestEnd = 0;
        for (int i = 0; i < n; i++)
        {
            length[i] = 1;
            for (int j = 0; j < i; j++)
                if (losses[i] < losses[j] && length[j] + 1 > length[i]) length[i] = length[j] + 1;
            if (length[i] > length[bestEnd]) bestEnd = i;
        }
        int bestStart = bestEnd - length[bestEnd] + 1;
        double third = (bestEnd - bestStart) / 3.0;
        int index = Math.Clamp(bestStart + (int)third + (int)(third / 2), 0, n - 1);
        return lrs[index];
    }

    private static double SteepRule(double[] lrs, double[] losses)
    {
        // Slope of loss against log lr by central differences (one-sided at the ends).
        int best = 0;
        double bestSlope = double.PositiveInfinity;
        for (int i = 0; i < lrs.Length; i++)
        {
            int a = Math.Max(0, i - 1), b = Math.Min(lrs.Length - 1, i + 1);
            double slope = (losses[b] - losses[a]) / (Math.Log(lrs[b]) - Math.Log(lrs[a]));
            if (slope < bestSlope) { bestSlope = slope; best = i; }
        }
        return lrs[best];
    }

    private static double SlideRule(double[] lrs, double[] losses, int window = 15, double threshold = 0.005)
    {
        var grad = new double[losses.Length];
        for (int i = 0; i < losses.Length; i++)
        {
            int a = Math.Max(0, i - 1), b = Math.Min(losses.Length - 1, i + 1);
            grad[i] = (losses[b] - losses[a]) / Math.Max(1, b - a);
        }
        int right = losses.Length - 1, left = right - window;
        if (left < 0) return lrs[0];
        double suggestion = lrs[left];
        while (left >= 0 && Math.Abs(grad[right] - grad[left]) > threshold)
        {
            suggestion = lrs[left];
            right--;
            left--;
        }
        return suggestion;
    }

    /// <summary>
    /// The curve as a self-contained SVG: smoothed loss against learning rate on a log axis, raw loss faint behind it,
    /// each suggestion marked and labelled.
    /// </summary>
    public string ToSvg(int width = 640, int height = 400)
    {
        const int Left = 60, Right = 20, Top = 20, Bottom = 45;
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append(inv, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        if (Points.Count < 2)
        {
            sb.Append(inv, $"<text x=\"{width / 2}\" y=\"{height / 2}\" text-anchor=\"middle\">Too few points to plot</text>\n</svg>\n");
            return sb.ToString();
        }
        var finite = Points.Where(p => double.IsFinite(p.SmoothLoss)).ToList();
        double x0 = Math.Log10(Points[0].LearningRate), x1 = Math.Log10(Points[^1].LearningRate);
        double y0 = finite.Min(p => p.SmoothLoss), y1 = Math.Min(finite.Max(p => p.SmoothLoss), finite[0].SmoothLoss * 2);
        if (y1 <= y0) y1 = y0 + 1;
        double X(double lr) => Left + (Math.Log10(lr) - x0) / Math.Max(1e-12, x1 - x0) * (width - Left - Right);
        double Y(double loss) => Top + (1 - (Math.Clamp(loss, y0, y1) - y0) / (y1 - y0)) * (height - Top - Bottom);
        string Path(Func<LrPoint, double> value) => string.Join(" ", finite.Select((p, i) => string.Create(inv, $"{(i == 0 ? 'M' : 'L')}{X(p.LearningRate):F1},{Y(value(p)):F1}")));

        sb.Append(inv, $"<line x1=\"{Left}\" y1=\"{height - Bottom}\" x2=\"{width - Right}\" y2=\"{height - Bottom}\" stroke=\"black\"/>\n");
        sb.Append(inv, $"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{height - Bottom}\" stroke=\"black\"/>\n");
        for (int e = (int)Math.Ceiling(x0); e <= (int)Math.Floor(x1); e++)
        {
            double x = X(Math.Pow(10, e));
            sb.Append(inv, $"<line x1=\"{x:F1}\" y1=\"{height - Bottom}\" x2=\"{x:F1}\" y2=\"{height - Bottom + 5}\" stroke=\"black\"/>");
            sb.Append(inv, $"<text x=\"{x:F1}\" y=\"{height - Bottom + 18}\" text-anchor=\"middle\">1e{e}</text>\n");
        }
        sb.Append(inv, $"<text x=\"{(Left + width - Right) / 2}\" y=\"{height - 8}\" text-anchor=\"middle\">learning rate (log scale)</text>\n");
        sb.Append(inv, $"<text x=\"14\" y=\"{(Top + height - Bottom) / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {(Top + height - Bottom) / 2})\">loss</text>\n");
        sb.Append(inv, $"<text x=\"{Left - 6}\" y=\"{Y(y0) + 4:F1}\" text-anchor=\"end\">{y0:G3}</text><text x=\"{Left - 6}\" y=\"{Y(y1) + 4:F1}\" text-anchor=\"end\">{y1:G3}</text>\n");
        sb.Append(inv, $"<path class=\"raw-loss\" d=\"{Path(p => p.Loss)}\" fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\"/>\n");
        sb.Append(inv, $"<path class=\"smooth-loss\" d=\"{Path(p => p.SmoothLoss)}\" fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\"/>\n");
        string[] colors = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#000000"];
        int k = 0;
        foreach (var (rule, lr) in Suggestions)
        {
            var nearest = finite.MinBy(p => Math.Abs(Math.Log(p.LearningRate) - Math.Log(lr)))!;
            string color = colors[k % colors.Length];
            sb.Append(inv, $"<circle class=\"suggestion\" data-rule=\"{rule}\" cx=\"{X(lr):F1}\" cy=\"{Y(nearest.SmoothLoss):F1}\" r=\"5\" fill=\"{color}\"/>");
            sb.Append(inv, $"<text x=\"{width - Right - 4}\" y=\"{Top + 14 + 16 * k}\" text-anchor=\"end\" fill=\"{color}\">{rule}: {lr:G3}</text>\n");
            k++;
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }
}
