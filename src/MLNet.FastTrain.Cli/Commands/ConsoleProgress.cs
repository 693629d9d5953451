using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Callbacks;
using MLNet.FastTrain.Learning;
using Spectre.Console;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>
/// Live progress for a terminal: an epoch bar and a batch bar whose descriptions carry the smoothed loss, the last
/// validation metric, the learning rate and images/s, with Spectre.Console's time-left column. Used only when output
/// goes to a terminal; redirected output gets the learner's plain log lines instead.
/// </summary>
internal sealed class ConsoleProgress(ProgressContext context) : Callback
{
    private ProgressTask? _epochs;
    private ProgressTask? _batches;
    private readonly Stopwatch _clock = new();
    private long _images;
    private string _metric = "";

    public override int Order => 40;

    /// <summary>Whether live progress can be drawn (a terminal that is not redirected).</summary>
    public static bool Available => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    public override void BeforeFit(Learner learner)
    {
        _epochs?.StopTask();
        _batches?.StopTask();
        _epochs = context.AddTask("epochs", maxValue: learner.Epochs);
        _batches = context.AddTask("batches", maxValue: Math.Max(1, learner.TrainData.BatchCount));
        _metric = "";
    }

    public override void BeforeEpoch(Learner learner)
    {
        if (_batches is null) return;
        _batches.Value = 0;
        _batches.MaxValue = Math.Max(1, learner.TrainData.BatchCount);
        _clock.Restart();
        _images = 0;
    }

    public override void AfterBatch(Learner learner)
    {
        if (_batches is null || _epochs is null) return;
        _images += learner.CurrentBatch?.Labels.Length ?? 0;
        _batches.Increment(1);
        var inv = CultureInfo.InvariantCulture;
        double lr = learner.Optimizer.Groups[^1].LearningRate ?? double.NaN;
        double rate = _images / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        _batches.Description = string.Create(inv, $"loss {learner.Recorder.SmoothLoss:F4}  lr {lr:G3}  {rate:F0} img/s");
        _epochs.Description = string.Create(inv, $"epoch {learner.Epoch + 1}/{learner.Epochs}{_metric}");
    }

    public override void AfterEpoch(Learner learner)
    {
        if (_epochs is null) return;
        _epochs.Increment(1);
        if (learner.LastValidation is { } v)
        {
            var inv = CultureInfo.InvariantCulture;
            _metric = string.Create(inv, $"  valid_loss {v.Loss:F4}") +
                string.Concat(v.Metrics.Select(m => string.Create(inv, $"  {m.Key} {m.Value:F4}")));
        }
    }

    public override void AfterFit(Learner learner)
    {
        _epochs?.StopTask();
        _batches?.StopTask();
    }

    /// <summary>Runs <paramref name="body"/> under live progress bars for <paramref name="learner"/>.</summary>
    public static T Run<T>(Learner learner, Func<T> body)
    {
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var progress = new ConsoleProgress(ctx);
                learner.Add(progress);
                try
                {
                    result = body();
                }
                finally
                {
                    learner.Remove(progress);
                }
            });
        return result;
    }

    /// <summary>A table of the epochs the recorder saw (the last fit's), for the end of a run.</summary>
    public static void WriteSummary(Learner learner, IEnumerable<(string Name, string Value)> totals)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new Table().Title("training summary").AddColumns("epoch", "train_loss", "valid_loss");
        var metrics = learner.Recorder.Epochs.SelectMany(e => e.Metrics.Keys).Distinct().ToList();
        foreach (var m in metrics) table.AddColumn(m);
        table.AddColumn("seconds");
        int k = 1;
        foreach (var e in learner.Recorder.Epochs)
        {
            var cells = new List<string> { (k++).ToString(inv), e.TrainLoss.ToString("F4", inv), e.ValidLoss?.ToString("F4", inv) ?? "" };
            cells.AddRange(metrics.Select(m => e.Metrics.TryGetValue(m, out var v) ? v.ToString("F4", inv) : ""));
            cells.Add(e.Seconds.ToString("F1", inv));
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
        var grid = new Grid().AddColumn().AddColumn();
        foreach (var (name, value) in totals) grid.AddRow(new Markup($"[bold]{Markup.Escape(name)}[/]"), new Text(value));
        AnsiConsole.Write(grid);
    }
}
