using System.Xml.Linq;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Reports;
using MLNet.FastTrain.Tuning;
using MLNet.FastTrain.Vision.Decoders;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class TrainingReportTests
{
    private static readonly XNamespace Html = "http://www.w3.org/1999/xhtml";
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void TheReportHoldsEveryChartTableAndImage()
    {
        var (train, valid) = TestData.Loaders(batch: 50);
        var net = TestData.TinyNet();
        var learner = new Learner(net, train, valid, new AdamW(net.Parameters()));
        var finder = LrFinder.Run(learner, new LrFinder.Options { Iterations = 30 });
        learner.FitSgdr(2, [1e-3], cycleLength: 1, cycleMult: 1);
        var trained = new TrainedModel(net, "tiny", TestData.Valid.Classes, train.Normalization, (1, 28, 28));
        var evaluation = new ClassifierTransformer(trained).Evaluate(TestData.Valid);
        var report = new TrainingReport
        {
            Title = "tiny <net> & co",
            Settings = new Dictionary<string, string> { ["model"] = "tiny" },
            LrFinder = finder,
            Batches = learner.Recorder.Batches,
            Epochs = learner.Recorder.Epochs,
            Evaluation = evaluation,
            Validation = TestData.Valid,
            Tta = new TtaReport(0.5, 0.55, 200),
            Seconds = 3,
            ImagesTrained = learner.Recorder.Batches.Count * 50L,
        };
        var html = report.ToHtml();
        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);
        var doc = XDocument.Parse(html["<!DOCTYPE html>".Length..]); // well-formed, so every tag is closed and every text escaped
        Assert.Equal("tiny <net> & co", doc.Descendants(Html + "title").Single().Value);
        var sections = doc.Descendants(Html + "section").Select(s => (string)s.Attribute("id")!).ToList();
        Assert.Equal(["summary", "lr-finder", "schedule", "losses", "confusion", "top-losses", "tta", "timing"], sections);

        XElement Section(string id) => doc.Descendants(Html + "section").Single(s => (string?)s.Attribute("id") == id);
        Assert.Equal(5, Section("lr-finder").Descendants(Svg + "circle").Count(c => (string?)c.Attribute("class") == "suggestion"));
        var schedule = Section("schedule").Descendants(Svg + "path").Single();
        Assert.Equal(learner.Recorder.Batches.Count, ((string)schedule.Attribute("d")!).Split(' ').Length);
        Assert.Equal(["training loss", "validation loss"], Section("losses").Descendants(Svg + "svg").First().Descendants(Svg + "path").Select(p => (string)p.Attribute("data-name")!));
        Assert.Equal(3, Section("losses").Descendants(Html + "table").Single().Elements(Html + "tr").Count()); // header + 2 epochs

        var matrix = Section("confusion").Descendants(Html + "table").First();
        var rows = matrix.Elements(Html + "tr").ToList();
        Assert.Equal(11, rows.Count);
        int total = rows.Skip(1).Sum(r => r.Elements(Html + "td").Sum(td => int.Parse(td.Value, System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(TestData.Valid.Count, total);

        var images = Section("top-losses").Descendants(Html + "img").ToList();
        Assert.Equal(12, images.Count);
        var top = evaluation.TopLosses(12)[0];
        var png = Convert.FromBase64String(((string)images[0].Attribute("src")!)["data:image/png;base64,".Length..]);
        var decoded = ImageDecoder.Decode(png, "top-loss.png");
        Assert.Equal(TestData.Valid.Pixels(top.Index).ToArray(), decoded.Pixels);
        Assert.Contains("+5.00 points", Section("tta").Value, StringComparison.Ordinal);
    }
}
