using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Tuning;
using Xunit;

namespace MLNet.FastTrain.Tests;

public class LrFinderTests
{
    private static Learner NewLearner()
    {
        var (train, valid) = TestData.Loaders();
        var net = TestData.TinyNet();
        return new Learner(net, train, valid, new Sgd(net.Parameters(), 0.01, momentum: 0.9, weightDecay: 5e-4));
    }

    [Fact]
    public void Range_test_restores_weights_buffers_optimizer_and_random_state_bit_for_bit()
    {
        var learner = NewLearner();
        learner.Fit(1);                                                           // optimizer has momentum buffers now
        Generator.Default.ManualSeed(42);
        var weights = learner.Model.StateDict().Clone();
        var optimizer = learner.Optimizer.StateDict();
        var random = Generator.Default.GetState();
        double lr = learner.Optimizer.Groups[0].LearningRate!.Value;
        int epochs = learner.EpochsTrained, records = learner.Recorder.Batches.Count;

        var result = LrFinder.Run(learner, new LrFinder.Options { Iterations = 40 });

        Assert.True(result.Points.Count > 5);
        foreach (var (name, t) in weights) Assert.Equal(t.ToArray(), learner.Model.StateDict()[name].ToArray());
        var after = learner.Optimizer.StateDict();
        Assert.Equal(optimizer.Keys, after.Keys);
        foreach (var (name, t) in optimizer) Assert.Equal(t.ToDoubleArray(), after[name].ToDoubleArray());
        Assert.Equal(random, Generator.Default.GetState());
        Assert.Equal(lr, learner.Optimizer.Groups[0].LearningRate);
        Assert.Equal(epochs, learner.EpochsTrained);
        Assert.Equal(records, learner.Recorder.Batches.Count);                   // the test is not training history
        Assert.NotNull(learner.ValidData);
    }

    [Fact]
    public void Ramp_is_exponential_smoothed_and_stops_on_divergence()
    {
        var learner = NewLearner();
        var result = LrFinder.Run(learner, new LrFinder.Options { Iterations = 100 });
        var p = result.Points;
        Assert.Equal(1e-7, p[0].LearningRate, 15);
        for (int i = 1; i < p.Count; i++) Assert.Equal(Math.Pow(1e8, 1 / 99.0), p[i].LearningRate / p[i - 1].LearningRate, 9);
        // The smoothed loss is the bias-corrected EMA of the raw losses.
        double avg = 0;
        for (int i = 0; i < p.Count; i++)
        {
            avg = 0.98 * avg + 0.02 * p[i].Loss;
            Assert.Equal(avg / (1 - Math.Pow(0.98, i + 1)), p[i].SmoothLoss, 9);
        }
        Assert.True(result.StoppedEarly, "an LR of 10 should make this net diverge");
        Assert.True(p[^1].SmoothLoss > 4 * p.Min(q => q.SmoothLoss) || !double.IsFinite(p[^1].SmoothLoss));
    }

    [Fact]
    public void Suggestions_lie_inside_the_range_with_the_combined_rule_by_default()
    {
        var learner = NewLearner();
        var result = LrFinder.Run(learner);
        Assert.Equal(5, result.Suggestions.Count);
        foreach (var (_, lr) in result.Suggestions) Assert.InRange(lr, 1e-8, 10);
        Assert.Equal(result.Suggestions[LrSuggestion.Combined], result.Suggested);
        double v = result.Suggestions[LrSuggestion.Valley];
        Assert.Equal(Math.Max(v, Math.Min(result.Suggestions[LrSuggestion.Minimum], 10 * v)), result.Suggested);
        var minimum = result.Points.Skip(10).Take(result.Points.Count - 15).MinBy(q => q.SmoothLoss)!;
        Assert.Equal(minimum.LearningRate / 10, result.Suggestions[LrSuggestion.Minimum], 12);
        // A useful rate for this net and data is far above the start of the ramp and below the blow-up.
        Assert.InRange(result.Suggested, 1e-4, 2);
        Assert.Null(result.Warning);
    }

    /// <summary>A curve of 100 points on the default ramp whose smoothed loss is <paramref name="loss"/> of log10(lr).</summary>
    private static LrFinderResult Curve(Func<double, double> loss)
    {
        var options = new LrFinder.Options();
        var points = Enumerable.Range(0, options.Iterations).Select(i =>
        {
            double lr = options.StartLr * Math.Pow(options.EndLr / options.StartLr, i / (options.Iterations - 1.0));
            double l = loss(Math.Log10(lr));
            return new LrPoint(lr, l, l);
        }).ToList();
        return new LrFinderResult(points, stoppedEarly: false, options, seconds: 0);
    }

    [Fact]
    public void Combined_rule_lifts_a_valley_that_lies_far_below_the_minimum()
    {
        // Falls steadily from 1e-6 to the minimum at 1e-1, then blows up: the valley's first third sits near 1e-4.
        var result = Curve(x => x < -1 ? 2.3 - 0.15 * (x + 6) : 1.55 + 2 * (x + 1));
        double valley = result.Suggestions[LrSuggestion.Valley], minimum = result.Suggestions[LrSuggestion.Minimum];
        Assert.True(valley < minimum / 10, $"valley {valley} should lie far left of minimum/10 {minimum}");
        Assert.Equal(10 * valley, result.Suggested, 12);                        // raised, by at most 10×
        Assert.InRange(minimum, 0.007, 0.014);
    }

    [Fact]
    public void Combined_rule_takes_the_minimum_rule_when_it_lies_within_ten_times_the_valley()
    {
        // Falls from 1e-4 to the minimum at 1e-1: the valley sits near 1e-3, minimum/10 at 1e-2, within its 10×.
        var result = Curve(x => x < -4 ? 2.3 : x < -1 ? 2.3 - 0.25 * (x + 4) : 1.55 + 2 * (x + 1));
        double valley = result.Suggestions[LrSuggestion.Valley], minimum = result.Suggestions[LrSuggestion.Minimum];
        Assert.InRange(minimum, valley, 10 * valley);
        Assert.Equal(minimum, result.Suggested);
    }

    [Fact]
    public void Combined_rule_keeps_a_valley_that_lies_near_the_minimum()
    {
        // Flat until 1e-2, a steep fall to the minimum at 1e-1, then the blow-up: the valley lies above minimum/10.
        var result = Curve(x => x < -2 ? 2.3 : x < -1 ? 2.3 - 0.8 * (x + 2) : 1.5 + 2 * (x + 1));
        double valley = result.Suggestions[LrSuggestion.Valley], minimum = result.Suggestions[LrSuggestion.Minimum];
        Assert.True(valley > minimum, $"valley {valley} should lie above minimum/10 {minimum}");
        Assert.Equal(valley, result.Suggested);
    }

    [Fact]
    public void Suggest_takes_the_chosen_rule()
    {
        var learner = NewLearner();
        var (byDefault, result) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = LrSuggestion.Combined });
        Assert.Equal(result.Suggestions[LrSuggestion.Combined], byDefault);
        int differing = 0;
        foreach (var rule in new[] { LrSuggestion.Valley, LrSuggestion.Minimum, LrSuggestion.Steep })
        {
            var (lr, again) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = rule });
            Assert.Equal(again.Suggestions[rule], lr);
            Assert.Equal(result.Suggestions[rule], lr);                          // the test restored everything: same curve
            if (lr != byDefault) differing++;
        }
        Assert.True(differing >= 2, "the rules read different rates off this curve, so the chosen one must be the one taken");
    }

    [Fact]
    public void Ranked_rule_trains_each_candidate_briefly_takes_the_most_accurate_and_puts_everything_back()
    {
        var learner = NewLearner();
        learner.Fit(1);
        Generator.Default.ManualSeed(7);
        var weights = learner.Model.StateDict().Clone();
        var optimizer = learner.Optimizer.StateDict();
        var random = Generator.Default.GetState();
        int epochs = learner.EpochsTrained, records = learner.Recorder.Batches.Count;
        var log = new List<string>();
        learner.Log += (_, m) => log.Add(m);
        var steps = new StepCounter();
        learner.Add(steps);

        var (lr, result) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = LrSuggestion.Ranked, RankingSteps = 6, RankingItems = 40 });

        double valley = result.Suggestions[LrSuggestion.Valley], combined = result.Suggestions[LrSuggestion.Combined];
        Assert.True(combined / valley >= 1.5, $"{valley} {combined}: this curve's valley and combined rate are far enough apart to rank three rates");
        string line = Assert.Single(log, m => m.StartsWith("LR finder: ranked", StringComparison.Ordinal));
        Assert.Contains("ranked 3 rates by 6 steps each, scored on 40 validation items", line, StringComparison.Ordinal);
        // "(r1: s1, r2: s2, r3: s3); R wins": R is the lowest rate scoring within one standard error of the best.
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var scored = line[(line.IndexOf('(', StringComparison.Ordinal) + 1)..line.IndexOf(')', StringComparison.Ordinal)].Split(", ")
            .Select(p => p.Split(": ")).Select(p => (Rate: double.Parse(p[0], inv), Score: double.Parse(p[1], inv))).ToList();
        Assert.Equal(3, scored.Count);
        double top = scored.Max(c => c.Score), error = Math.Sqrt(top * (1 - top) / 40);
        Assert.Equal(scored.Where(c => c.Score >= top - error - 1e-4).Min(c => c.Rate), double.Parse(lr.ToString("G3", inv), inv));
        Assert.Contains(lr, new[] { valley, Math.Sqrt(valley * combined), combined });
        Assert.Equal([result.Points.Count, 6, 6, 6], steps.PerFit);              // the range test, then three runs of 6 steps

        foreach (var (name, t) in weights) Assert.Equal(t.ToArray(), learner.Model.StateDict()[name].ToArray());
        var after = learner.Optimizer.StateDict();
        foreach (var (name, t) in optimizer) Assert.Equal(t.ToDoubleArray(), after[name].ToDoubleArray());
        Assert.Equal(random, Generator.Default.GetState());
        Assert.Equal(epochs, learner.EpochsTrained);
        Assert.Equal(records, learner.Recorder.Batches.Count);
        Assert.NotNull(learner.ValidData);

        // Without validation data there is nothing to rank by: the combined rule's rate, said so.
        learner.ValidData = null;
        var (fallback, again) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = LrSuggestion.Ranked, Iterations = 30 });
        Assert.Equal(again.Suggestions[LrSuggestion.Combined], fallback);
        Assert.Contains(log, m => m.Contains("the ranked rule needs validation images", StringComparison.Ordinal));
    }

    [Fact]
    public void Ranking_scores_the_validation_items_at_the_size_the_validation_loader_serves()
    {
        // A net that takes 32-pixel images only, fed by loaders that enlarge the 28-pixel items (as fine-tuning a
        // pretrained body at 64 px does): the candidates' scoring and the ranked range test must see 32 px too.
        var (train, valid) = TestData.Loaders();
        train.ImageSize = valid.ImageSize = (32, 32);
        var g = new Generator(1);
        var net = new Sequential(
            new Conv2d(1, 8, 3, padding: 1, generator: g), new ReLU(), new MaxPool2d(4),
            new Flatten(), new Linear(8 * 8 * 8, 10, generator: g));
        var learner = new Learner(net, train, valid, new Sgd(net.Parameters(), 0.01, momentum: 0.9));
        var log = new List<string>();
        learner.Log += (_, m) => log.Add(m);

        var (lr, result) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = LrSuggestion.Ranked, RankingSteps = 4, RankingItems = 40 });
        Assert.True(result.Suggestions[LrSuggestion.Combined] / result.Suggestions[LrSuggestion.Valley] >= 1.5, "this curve has three rates to rank");
        Assert.Contains(log, m => m.Contains("ranked 3 rates by 4 steps each, scored on 40 validation items", StringComparison.Ordinal));
        Assert.True(lr > 0 && double.IsFinite(lr));
        var byAccuracy = LrFinder.Run(learner, new LrFinder.Options { RankByValidationItems = 40, Iterations = 6 });
        Assert.Equal(6, byAccuracy.Points.Count);
        Assert.All(byAccuracy.Points, p => Assert.InRange(p.Loss, 0, 1));          // 1 − accuracy on the 40 items
    }

    [Fact]
    public void The_default_rule_ranks_when_an_epoch_fits_in_the_ranking_runs_and_reads_the_curve_otherwise()
    {
        var learner = NewLearner();
        Assert.Equal(LrSuggestion.Auto, new LrFinder.Options().Suggestion);
        int epoch = learner.TrainData.BatchCount;
        var log = new List<string>();
        learner.Log += (_, m) => log.Add(m);
        var (shortEpoch, _) = LrFinder.Suggest(learner, new LrFinder.Options { RankingSteps = epoch, RankingItems = 40 });
        var (ranked, _) = LrFinder.Suggest(learner, new LrFinder.Options { Suggestion = LrSuggestion.Ranked, RankingSteps = epoch, RankingItems = 40 });
        Assert.Equal(ranked, shortEpoch);
        Assert.Equal(2, log.Count(m => m.StartsWith("LR finder: ranked", StringComparison.Ordinal)));
        var (longEpoch, result) = LrFinder.Suggest(learner, new LrFinder.Options { RankingSteps = epoch - 1, RankingItems = 40 });
        Assert.Equal(result.Suggestions[LrSuggestion.Combined], longEpoch);
        Assert.Equal(2, log.Count(m => m.StartsWith("LR finder: ranked", StringComparison.Ordinal))); // no ranking this time
        // Before SGDR, which starts each cycle at its peak, it reads the geometric middle of the valley and the combined rate.
        var (beforeSgdr, curve) = LrFinder.Suggest(learner, new LrFinder.Options { RankingSteps = epoch - 1, RestartsAtPeak = true });
        Assert.Equal(Math.Sqrt(curve.Suggestions[LrSuggestion.Valley] * curve.Suggestions[LrSuggestion.Combined]), beforeSgdr, 12);
        Assert.True(beforeSgdr < longEpoch, "the valley lies below the combined rate on this curve, so the middle is lower");
    }

    private sealed class StepCounter : Callbacks.Callback
    {
        private int _batches;

        public List<int> PerFit { get; } = [];

        public override void BeforeFit(Learner learner) => _batches = 0;

        public override void BeforeBatch(Learner learner) => _batches++;

        public override void AfterFit(Learner learner) => PerFit.Add(_batches);
    }

    [Fact]
    public void Svg_plot_marks_each_suggestion()
    {
        var result = LrFinder.Run(NewLearner());
        var svg = result.ToSvg();
        Assert.StartsWith("<svg", svg, StringComparison.Ordinal);
        Assert.Contains("class=\"smooth-loss\"", svg, StringComparison.Ordinal);
        Assert.Equal(5, System.Text.RegularExpressions.Regex.Count(svg, "class=\"suggestion\""));
        Assert.Contains("Combined: ", svg, StringComparison.Ordinal);
        Assert.Contains("Valley: ", svg, StringComparison.Ordinal);
        var doc = System.Xml.Linq.XDocument.Parse(svg);                          // well-formed
        Assert.Equal("svg", doc.Root!.Name.LocalName);
    }

    [Fact]
    public void A_flat_curve_gets_a_warning()
    {
        // A learning-rate range far too small to move the loss.
        var result = LrFinder.Run(NewLearner(), new LrFinder.Options { StartLr = 1e-12, EndLr = 1e-10, Iterations = 30 });
        Assert.NotNull(result.Warning);
        Assert.Contains("no valley", result.Warning, StringComparison.Ordinal);
    }

    [Fact]
    public void A_curve_with_nothing_to_read_above_the_ramps_start_gives_the_no_descent_rate()
    {
        // A whole ramp inside its own first decade: whatever the rules read lies below ten times the start.
        var learner = NewLearner();
        var log = new List<string>();
        learner.Log += (_, m) => log.Add(m);
        var options = new LrFinder.Options { StartLr = 1e-12, EndLr = 9e-12, Iterations = 30, Suggestion = LrSuggestion.Combined, NoDescentRate = 0.0123 };
        var (lr, result) = LrFinder.Suggest(learner, options);
        Assert.True(result.Suggestions[LrSuggestion.Combined] < 1e-11);
        Assert.Equal(0.0123, lr);
        Assert.Contains(log, m => m.Contains("no descent", StringComparison.Ordinal) && m.Contains("0.0123", StringComparison.Ordinal));
        options.NoDescentRate = null;
        Assert.Equal(1e-3, LrFinder.Suggest(NewLearner(), options).LearningRate);

        // What a fitted network's curve looks like: a loss near zero that noise lifts past four times its best within
        // a few steps, so the test stops in the ramp's first decade.
        var start = new LrFinder.Options();
        double[] noise = [0.0020, 0.0012, 0.0031, 0.0009, 0.0024, 0.0041];
        var points = noise.Select((l, i) => new LrPoint(start.StartLr * Math.Pow(1.2, i), l, l)).ToList();
        Assert.True(LrFinder.NoUsableDescent(new LrFinderResult(points, stoppedEarly: true, start, seconds: 0), start));
        // A curve with a valley far above the start is read as it is.
        var usual = Curve(x => x < -1 ? 2.3 - 0.15 * (x + 6) : 1.55 + 2 * (x + 1));
        Assert.False(LrFinder.NoUsableDescent(usual, start));
    }

    [Fact]
    public void Bad_options_are_rejected_by_name()
    {
        var learner = NewLearner();
        Assert.Contains("StartLr", Assert.Throws<ArgumentOutOfRangeException>(() => LrFinder.Run(learner, new LrFinder.Options { StartLr = 1, EndLr = 0.1 })).Message, StringComparison.Ordinal);
        Assert.Contains("Iterations", Assert.Throws<ArgumentOutOfRangeException>(() => LrFinder.Run(learner, new LrFinder.Options { Iterations = 1 })).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LrFinder.Run(learner, new LrFinder.Options { PerGroup = [(1e-7, 1), (1e-7, 1)] }));
    }

    [Fact]
    public void Per_group_ranges_ramp_each_group_separately()
    {
        var (train, valid) = TestData.Loaders();
        var net = TestData.TinyNet();
        var all = net.Parameters().ToList();
        var opt = new Sgd([new ParamGroup(all.Take(4)), new ParamGroup(all.Skip(4))], 0.01, momentum: 0.9);
        var learner = new Learner(net, train, valid, opt);
        var probe = new GroupProbe();
        learner.Add(probe);
        LrFinder.Run(learner, new LrFinder.Options { Iterations = 20, PerGroup = [(1e-8, 1e-2), (1e-7, 1e-1)] });
        Assert.All(probe.Ratios, r => Assert.Equal(10, r, 6));
    }

    private sealed class GroupProbe : Callbacks.Callback
    {
        public List<double> Ratios { get; } = [];

        public override int Order => 0;

        public override void BeforeBatch(Learner learner) =>
            Ratios.Add(learner.Optimizer.Groups[1].LearningRate!.Value / learner.Optimizer.Groups[0].LearningRate!.Value);
    }
}
