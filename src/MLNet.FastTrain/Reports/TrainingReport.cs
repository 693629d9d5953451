using System.Globalization;
using System.Net;
using System.Text;
using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Metrics;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Datasets;
using MLNet.FastTrain.Vision.Decoders;
using MLNet.FastTrain.Vision.Encoders;

namespace MLNet.FastTrain.Reports;

/// <summary>
/// One self-contained HTML page about a training run: the LR-finder curve with its suggestions, the learning-rate
/// schedule, training and validation loss and metrics per epoch, the confusion matrix, the validation images with
/// the highest loss (predicted and true labels), the TTA gain, and time and throughput. Charts are inline SVG and
/// images inline PNG, so the file stands alone. The markup is well-formed XML (XHTML) so tools can check it.
/// </summary>
public sealed class TrainingReport
{
    /// <summary>The page's title.</summary>
    public string Title { get; init; } = "Training report";

    /// <summary>Settings shown at the top (model, recipe, batch size, ...).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>The LR finder's result, when one ran.</summary>
    public LrFinderResult? LrFinder { get; init; }

    /// <summary>Every training batch: step, learning rates, losses.</summary>
    public IReadOnlyList<BatchRecord> Batches { get; init; } = [];

    /// <summary>Every epoch: losses and metrics.</summary>
    public IReadOnlyList<EpochRecord> Epochs { get; init; } = [];

    /// <summary>The evaluation on the validation set.</summary>
    public ClassificationReport? Evaluation { get; init; }

    /// <summary>The validation set the evaluation used (for the top-loss images).</summary>
    public ImageDataset? Validation { get; init; }

    /// <summary>Accuracy with and without test-time augmentation, when measured.</summary>
    public TtaReport? Tta { get; init; }

    /// <summary>Wall time of the whole run, in seconds.</summary>
    public double Seconds { get; init; }

    /// <summary>Training images processed (for throughput).</summary>
    public long ImagesTrained { get; init; }

    /// <summary>Writes the page.</summary>
    public void Save(string path) => Engine.Serialization.AtomicFile.WriteAllText(path, ToHtml());

    /// <summary>The page's markup.</summary>
    public string ToHtml()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        string E(string s) => WebUtility.HtmlEncode(s);
        sb.Append("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>");
        sb.Append(inv, $"<title>{E(Title)}</title><style>");
        sb.Append("body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}");
        sb.Append("table{border-collapse:collapse}td,th{padding:3px 8px;border:1px solid #ddd;text-align:right;font-size:13px}th{background:#f4f4f4}");
        sb.Append(".grid{display:flex;flex-wrap:wrap;gap:10px}.grid figure{margin:0;text-align:center;font-size:12px}.grid img{image-rendering:pixelated;width:96px;height:96px;border:1px solid #ccc}");
        sb.Append("</style></head><body>");
        sb.Append(inv, $"<h1>{E(Title)}</h1>");

        sb.Append("<section id=\"summary\"><h2>Summary</h2><table>");
        foreach (var (k, v) in Settings) sb.Append(inv, $"<tr><th>{E(k)}</th><td>{E(v)}</td></tr>");
        if (Evaluation is not null) sb.Append(inv, $"<tr><th>validation accuracy</th><td>{Evaluation.Accuracy:P2}</td></tr><tr><th>validation loss</th><td>{Evaluation.CrossEntropy:F4}</td></tr>");
        sb.Append("</table></section>");

        sb.Append("<section id=\"lr-finder\"><h2>Learning-rate finder</h2>");
        if (LrFinder is null) sb.Append("<p>The learning rate was given, so the finder did not run.</p>");
        else sb.Append(StripXmlDeclaration(LrFinder.ToSvg())).Append(inv, $"<p>Read off the curve: {E(string.Join(", ", LrFinder.Suggestions.Select(kv => $"{kv.Key} {kv.Value.ToString("G3", inv)}")))} (the rate trained with is the settings' learning rate)</p>");
        sb.Append("</section>");

        sb.Append("<section id=\"schedule\"><h2>Learning-rate schedule</h2>");
        int groups = Batches.Count == 0 ? 0 : Batches.Max(b => b.LearningRates.Length);
        string[] palette = ["#08519c", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
        var lrSeries = Enumerable.Range(0, groups).Select(g => new ChartSeries(groups == 1 ? "learning rate" : $"group {g}",
            Batches.Where(b => g < b.LearningRates.Length).Select((b, i) => ((double)i, b.LearningRates[g])).ToList(), palette[g % palette.Length])).ToList();
        sb.Append(SvgChart.Lines(lrSeries, "batch", "learning rate", "schedule-chart", logY: true));
        sb.Append("</section>");

        sb.Append("<section id=\"losses\"><h2>Loss and metrics per epoch</h2>");
        var epochs = Epochs.Select((e, i) => (Index: (double)(i + 1), Record: e)).ToList();
        sb.Append(SvgChart.Lines(
        [
            new("training loss", epochs.Select(e => (e.Index, e.Record.TrainLoss)).ToList(), "#08519c"),
            new("validation loss", epochs.Where(e => e.Record.ValidLoss is not null).Select(e => (e.Index, e.Record.ValidLoss!.Value)).ToList(), "#d62728"),
        ], "epoch", "loss", "loss-chart"));
        var metricNames = Epochs.SelectMany(e => e.Metrics.Keys).Distinct().ToList();
        sb.Append(SvgChart.Lines(metricNames.Select((m, k) => new ChartSeries(m,
            epochs.Where(e => e.Record.Metrics.ContainsKey(m)).Select(e => (e.Index, e.Record.Metrics[m])).ToList(), palette[(k + 2) % palette.Length])).ToList(),
            "epoch", "metric", "metric-chart"));
        sb.Append("<table class=\"epochs\"><tr><th>epoch</th><th>training loss</th><th>validation loss</th>");
        foreach (var m in metricNames) sb.Append(inv, $"<th>{E(m)}</th>");
        sb.Append("<th>seconds</th></tr>");
        foreach (var (index, e) in epochs)
        {
            sb.Append(inv, $"<tr><td>{index}</td><td>{e.TrainLoss:F4}</td><td>{(e.ValidLoss is double v ? v.ToString("F4", inv) : "")}</td>");
            foreach (var m in metricNames) sb.Append(inv, $"<td>{(e.Metrics.TryGetValue(m, out var value) ? value.ToString("F4", inv) : "")}</td>");
            sb.Append(inv, $"<td>{e.Seconds:F1}</td></tr>");
        }
        sb.Append("</table></section>");

        sb.Append("<section id=\"confusion\"><h2>Confusion matrix</h2>");
        if (Evaluation is { } ev)
        {
            int c = ev.Classes.Count;
            int max = Math.Max(1, Enumerable.Range(0, c * c).Max(i => ev.ConfusionMatrix[i / c, i % c]));
            sb.Append("<table class=\"confusion-matrix\"><tr><th>actual \\ predicted</th>");
            foreach (var name in ev.Classes) sb.Append(inv, $"<th>{E(name)}</th>");
            sb.Append("</tr>");
            for (int i = 0; i < c; i++)
            {
                sb.Append(inv, $"<tr><th>{E(ev.Classes[i])}</th>");
                for (int j = 0; j < c; j++)
                {
                    int n = ev.ConfusionMatrix[i, j];
                    double shade = (double)n / max;
                    sb.Append(inv, $"<td style=\"background:rgba(8,81,156,{shade * 0.85:F2});color:{(shade > 0.5 ? "white" : "black")}\">{n}</td>");
                }
                sb.Append("</tr>");
            }
            sb.Append("</table><table class=\"per-class\"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
            foreach (var m in ev.PerClass) sb.Append(inv, $"<tr><th>{E(m.Class)}</th><td>{m.Precision:F3}</td><td>{m.Recall:F3}</td><td>{m.F1:F3}</td><td>{m.Support}</td></tr>");
            sb.Append("</table>");
        }
        else sb.Append("<p>No validation set.</p>");
        sb.Append("</section>");

        sb.Append("<section id=\"top-losses\"><h2>Highest-loss validation images</h2><div class=\"grid\">");
        if (Evaluation is not null && Validation is not null)
        {
            foreach (var t in Evaluation.TopLosses(12))
            {
                var png = Convert.ToBase64String(PngEncoder.Encode(DecodedImage.FromPlanar(Validation.Pixels(t.Index), Validation.Channels, Validation.Height, Validation.Width).Pixels, Validation.Width, Validation.Height, Validation.Channels));
                sb.Append(inv, $"<figure class=\"top-loss\"><img alt=\"item {t.Index}\" src=\"data:image/png;base64,{png}\"/><figcaption>predicted {E(Evaluation.Classes[t.Predicted])} ({t.Probability:P0})<br/>actual {E(Evaluation.Classes[t.Actual])}<br/>loss {t.Loss:F2}</figcaption></figure>");
            }
        }
        sb.Append("</div></section>");

        sb.Append("<section id=\"tta\"><h2>Test-time augmentation</h2>");
        sb.Append(Tta is { } tta
            ? string.Create(inv, $"<p>Accuracy {tta.PlainAccuracy:P2} without TTA, {tta.TtaAccuracy:P2} with it: a change of {tta.Gain * 100:+0.00;-0.00} points on {tta.Items} images.</p>")
            : "<p>Not measured (train with --tta).</p>");
        sb.Append("</section>");

        sb.Append("<section id=\"timing\"><h2>Time and throughput</h2><table>");
        sb.Append(inv, $"<tr><th>wall time</th><td>{Seconds:F1} s</td></tr><tr><th>training images</th><td>{ImagesTrained}</td></tr>");
        double trainSeconds = Epochs.Sum(e => e.Seconds);
        if (trainSeconds > 0) sb.Append(inv, $"<tr><th>training epochs' time</th><td>{trainSeconds:F1} s</td></tr><tr><th>throughput</th><td>{ImagesTrained / trainSeconds:F0} images/s</td></tr>");
        sb.Append("</table></section></body></html>\n");
        return sb.ToString();
    }

    private static string StripXmlDeclaration(string svg) => svg.StartsWith("<?xml", StringComparison.Ordinal) ? svg[(svg.IndexOf("?>", StringComparison.Ordinal) + 2)..] : svg;
}
