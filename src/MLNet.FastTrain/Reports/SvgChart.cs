using System.Globalization;
using System.Net;
using System.Text;

namespace MLNet.FastTrain.Reports;

/// <summary>A named series of (x, y) points for <see cref="SvgChart"/>.</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points, string Color);

/// <summary>Line charts as self-contained SVG: axes with end labels, one path per series, a legend.</summary>
public static class SvgChart
{
    /// <summary>Draws the series; non-finite points are left out. A log y axis needs positive values.</summary>
    public static string Lines(IReadOnlyList<ChartSeries> series, string xLabel, string yLabel, string cssClass, bool logY = false, int width = 640, int height = 320)
    {
        ArgumentNullException.ThrowIfNull(series);
        const int Left = 64, Right = 20, Top = 20, Bottom = 45;
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"{cssClass}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.Append(inv, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        var points = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!logY || p.Y > 0)).ToList();
        if (points.Count == 0)
        {
            sb.Append(inv, $"<text x=\"{width / 2}\" y=\"{height / 2}\" text-anchor=\"middle\">no data</text></svg>");
            return sb.ToString();
        }
        double Ty(double y) => logY ? Math.Log10(y) : y;
        double x0 = points.Min(p => p.X), x1 = points.Max(p => p.X), y0 = points.Min(p => Ty(p.Y)), y1 = points.Max(p => Ty(p.Y));
        if (x1 <= x0) x1 = x0 + 1;
        if (y1 <= y0) { y0 -= 0.5; y1 += 0.5; }
        double X(double x) => Left + (x - x0) / (x1 - x0) * (width - Left - Right);
        double Y(double y) => Top + (1 - (Ty(y) - y0) / (y1 - y0)) * (height - Top - Bottom);
        string Label(double v) => (logY ? Math.Pow(10, v) : v).ToString("G3", inv);
        sb.Append(inv, $"<line x1=\"{Left}\" y1=\"{height - Bottom}\" x2=\"{width - Right}\" y2=\"{height - Bottom}\" stroke=\"black\"/>");
        sb.Append(inv, $"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{height - Bottom}\" stroke=\"black\"/>");
        sb.Append(inv, $"<text x=\"{Left}\" y=\"{height - Bottom + 16}\" text-anchor=\"start\">{x0.ToString("G4", inv)}</text>");
        sb.Append(inv, $"<text x=\"{width - Right}\" y=\"{height - Bottom + 16}\" text-anchor=\"end\">{x1.ToString("G4", inv)}</text>");
        sb.Append(inv, $"<text x=\"{Left - 6}\" y=\"{height - Bottom}\" text-anchor=\"end\">{Label(y0)}</text>");
        sb.Append(inv, $"<text x=\"{Left - 6}\" y=\"{Top + 10}\" text-anchor=\"end\">{Label(y1)}</text>");
        sb.Append(inv, $"<text x=\"{(Left + width - Right) / 2}\" y=\"{height - 8}\" text-anchor=\"middle\">{WebUtility.HtmlEncode(xLabel)}</text>");
        sb.Append(inv, $"<text x=\"14\" y=\"{(Top + height - Bottom) / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {(Top + height - Bottom) / 2})\">{WebUtility.HtmlEncode(yLabel)}{(logY ? " (log)" : "")}</text>");
        int k = 0;
        foreach (var s in series)
        {
            var valid = s.Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!logY || p.Y > 0)).ToList();
            if (valid.Count == 0) continue;
            string d = string.Join(" ", valid.Select((p, i) => string.Create(inv, $"{(i == 0 ? 'M' : 'L')}{X(p.X):F1},{Y(p.Y):F1}")));
            sb.Append(inv, $"<path class=\"series\" data-name=\"{WebUtility.HtmlEncode(s.Name)}\" d=\"{d}\" fill=\"none\" stroke=\"{s.Color}\" stroke-width=\"2\"/>");
            if (valid.Count == 1) sb.Append(inv, $"<circle cx=\"{X(valid[0].X):F1}\" cy=\"{Y(valid[0].Y):F1}\" r=\"3\" fill=\"{s.Color}\"/>");
            sb.Append(inv, $"<text x=\"{width - Right - 4}\" y=\"{Top + 14 + 16 * k}\" text-anchor=\"end\" fill=\"{s.Color}\">{WebUtility.HtmlEncode(s.Name)}</text>");
            k++;
        }
        sb.Append("</svg>");
        return sb.ToString();
    }
}
