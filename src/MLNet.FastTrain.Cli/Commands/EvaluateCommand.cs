using System.CommandLine;
using System.Globalization;
using MLNet.FastTrain.Metrics;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain evaluate</c>: a saved model on the validation images of an IDX folder.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "a model file written by train --out", Required = true };
        var data = new Option<string?>("--data") { Description = DataSource.Description + " (its validation part is used)" };
        var tta = new Option<bool>("--tta") { Description = "also score with test-time augmentation" };
        var json = new Option<bool>("--json");
        var command = new Command("evaluate", "Accuracy, loss, per-class metrics and confusion matrix of a saved model.") { model, data, tta, json };
        command.SetAction(p => CliSupport.Run(p, _ =>
        {
            var trained = ModelSource.LoadTrained(p.GetValue(model)!);
            var classifier = new ClassifierTransformer(trained);
            var (_, valid, _) = DataSource.Load(p.GetValue(data), trained.InputSize.Height, trained.InputSize.Channels);
            if (!valid.Classes.SequenceEqual(classifier.Classes))
                throw new InvalidDataException($"The model's classes ({string.Join(", ", classifier.Classes)}) differ from the data's ({string.Join(", ", valid.Classes)}).");
            var report = classifier.Evaluate(valid);
            double? ttaAccuracy = p.GetValue(tta) ? new TtaScorer(classifier).Evaluate(valid).TtaAccuracy : null;
            if (p.GetValue(json))
            {
                int c = report.Classes.Count;
                CliSupport.WriteJson(new Dictionary<string, object?>
                {
                    ["accuracy"] = Math.Round(report.Accuracy, 4),
                    ["loss"] = Math.Round(report.CrossEntropy, 4),
                    ["accuracy_tta"] = ttaAccuracy is double a ? Math.Round(a, 4) : null,
                    ["classes"] = report.Classes,
                    ["per_class"] = report.PerClass.Select(m => new Dictionary<string, object>
                    {
                        ["class"] = m.Class, ["precision"] = Math.Round(m.Precision, 4), ["recall"] = Math.Round(m.Recall, 4), ["f1"] = Math.Round(m.F1, 4), ["support"] = m.Support,
                    }).ToArray(),
                    ["confusion_matrix"] = Enumerable.Range(0, c).Select(i => Enumerable.Range(0, c).Select(j => report.ConfusionMatrix[i, j]).ToArray()).ToArray(),
                });
                return CliSupport.Success;
            }
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(inv, $"accuracy {report.Accuracy:P2}, loss {report.CrossEntropy:F4}") +
                (ttaAccuracy is double t ? string.Create(inv, $", with TTA {t:P2}") : ""));
            foreach (var m in report.PerClass)
                Console.WriteLine(string.Create(inv, $"  {m.Class,-12} precision {m.Precision:F3}  recall {m.Recall:F3}  F1 {m.F1:F3}  ({m.Support})"));
            return CliSupport.Success;
        }));
        return command;
    }
}
