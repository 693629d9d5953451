using System.CommandLine;
using System.Globalization;
using MLNet.FastTrain.Engine.Schedules;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain schedule sgdr|one-cycle</c>: prints the learning rate of every step before training.</summary>
internal static class ScheduleCommand
{
    public static Command Create()
    {
        var lr = new Option<double>("--lr") { Description = "peak learning rate", Required = true };
        var spe = new Option<int>("--steps-per-epoch") { Description = "mini-batches per epoch", Required = true };
        var json = new Option<bool>("--json") { Description = "print {\"lr\": [...]}" };
        var cycles = new Option<int>("--cycles") { DefaultValueFactory = _ => 3 };
        var cycleLen = new Option<int>("--cycle-len") { DefaultValueFactory = _ => 1 };
        var cycleMult = new Option<int>("--cycle-mult") { DefaultValueFactory = _ => 1 };
        var minLr = new Option<double>("--min-lr") { DefaultValueFactory = _ => 0 };
        var sgdr = new Command("sgdr", "SGD with warm restarts.") { lr, spe, json, cycles, cycleLen, cycleMult, minLr };
        sgdr.SetAction(p => CliSupport.Run(p, _ =>
            Print(new SgdrSchedule(p.GetValue(lr), p.GetValue(cycles), p.GetValue(spe), p.GetValue(cycleLen), p.GetValue(cycleMult), p.GetValue(minLr)), p.GetValue(json))));

        var epochs = new Option<int>("--epochs") { Required = true };
        var pctStart = new Option<double>("--pct-start") { DefaultValueFactory = _ => 0.25 };
        var div = new Option<double>("--div") { DefaultValueFactory = _ => 25 };
        var divFinal = new Option<double>("--div-final") { DefaultValueFactory = _ => 1e5 };
        var oneCycle = new Command("one-cycle", "fastai's one-cycle policy.") { lr, spe, json, epochs, pctStart, div, divFinal };
        oneCycle.SetAction(p => CliSupport.Run(p, _ =>
        {
            if (p.GetValue(epochs) < 1) throw new ArgumentException("--epochs must be positive.");
            return Print(new OneCycleSchedule(p.GetValue(lr), p.GetValue(epochs) * p.GetValue(spe), p.GetValue(pctStart), p.GetValue(div), p.GetValue(divFinal)), p.GetValue(json));
        }));
        return new Command("schedule", "Print a learning-rate schedule step by step.") { sgdr, oneCycle };
    }

    private static int Print(Schedule schedule, bool json)
    {
        var values = schedule.ToArray();
        if (json) CliSupport.WriteJson(new Dictionary<string, object> { ["lr"] = values });
        else for (int i = 0; i < values.Length; i++) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i}\t{values[i]:G6}"));
        return CliSupport.Success;
    }
}
