using System.Diagnostics;
using System.Text.Json;
using MLNet.FastTrain.Engine.Schedules;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.TestUtilities;
using Xunit;

namespace MLNet.FastTrain.Cli.Tests;

/// <summary>Runs the built fasttrain tool as a user would and checks exit codes and output.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fasttrain-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Runs the built tool with two threads on the bundled subset.</summary>
    private static (int Code, string Out, string Err) Run(params string[] args) =>
        Exec(Tool(args)).GetAwaiter().GetResult();

    /// <summary>
    /// The built tool's command line: two threads, and the bundled subset even where Debian's full Fashion-MNIST is
    /// installed (which train would otherwise pick).
    /// </summary>
    private static ProcessStartInfo Tool(params string[] args)
    {
        var psi = Command("dotnet", [Path.Combine(AppContext.BaseDirectory, "fasttrain.dll"), .. args]);
        psi.Environment["FASTTRAIN_THREADS"] = "2";
        psi.Environment["FASTTRAIN_DATA"] = RepoPaths.Get("data", "fashion-mnist-mini");
        return psi;
    }

    private static ProcessStartInfo Command(string program, IEnumerable<string> args, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Runs a process to its end; its exit code and what it wrote.</summary>
    private static async Task<(int Code, string Out, string Err)> Exec(ProcessStartInfo psi)
    {
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public void Schedule_prints_the_same_values_as_the_library()
    {
        var (code, output, _) = Run("schedule", "sgdr", "--lr", "0.1", "--cycles", "3", "--cycle-len", "1", "--cycle-mult", "2", "--steps-per-epoch", "4", "--json");
        Assert.Equal(0, code);
        var lr = JsonDocument.Parse(output).RootElement.GetProperty("lr").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(new SgdrSchedule(0.1, 3, 4, 1, 2).ToArray(), lr);
        var (code2, output2, _) = Run("schedule", "one-cycle", "--lr", "0.5", "--epochs", "2", "--steps-per-epoch", "5", "--json");
        Assert.Equal(0, code2);
        Assert.Equal(10, JsonDocument.Parse(output2).RootElement.GetProperty("lr").GetArrayLength());
    }

    [Fact]
    public void Train_on_bundled_data_reports_json_and_writes_a_loadable_model()
    {
        string model = Path.Combine(_dir, "m.ftm");
        var (code, output, err) = Run("train", "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.03", "--batch", "32", "--out", model, "--json");
        Assert.True(code == 0, err);
        var json = JsonDocument.Parse(output).RootElement;
        foreach (var key in new[] { "accuracy", "loss", "train_seconds", "epochs", "batch_size", "lr" }) Assert.True(json.TryGetProperty(key, out _), key);
        Assert.Equal(1, json.GetProperty("epochs").GetInt32());
        Assert.Equal(32, json.GetProperty("batch_size").GetInt32());
        // TTA is reported by default; the time is broken down, and the parts fit inside the whole.
        Assert.InRange(json.GetProperty("accuracy_tta").GetDouble(), 0.3, 1.0);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("lr_find_seconds").ValueKind);   // --lr given: no range test
        double parts = new[] { "load_seconds", "fit_seconds", "validate_seconds", "tta_seconds" }.Sum(k => json.GetProperty(k).GetDouble());
        Assert.True(json.GetProperty("fit_seconds").GetDouble() > 0 && json.GetProperty("tta_seconds").GetDouble() > 0);
        Assert.True(parts <= json.GetProperty("train_seconds").GetDouble() + 0.2, $"parts {parts} exceed the whole");
        Assert.InRange(json.GetProperty("accuracy").GetDouble(), 0.3, 1.0);
        var loaded = TrainedModel.Load(model);
        Assert.Equal("simple", loaded.Architecture);
        Assert.Equal("Ankle boot", loaded.Classes[9]);
        var valid = Vision.Datasets.IdxDataset.Load(RepoPaths.Get("data", "fashion-mnist-mini")).Valid;
        var predictions = loaded.Predict(valid);
        double accuracy = predictions.Where((p, i) => p.PredictedLabel == valid.Classes[valid.LabelOf(i)]).Count() / (double)valid.Count;
        Assert.Equal(json.GetProperty("accuracy").GetDouble(), accuracy, 3);
        Assert.All(predictions, p => Assert.Equal(1.0, p.Score.Sum(), 4));

        var (evalCode, evalOut, evalErr) = Run("evaluate", "--model", model, "--json");
        Assert.True(evalCode == 0, evalErr);
        var report = JsonDocument.Parse(evalOut).RootElement;
        Assert.Equal(json.GetProperty("accuracy").GetDouble(), report.GetProperty("accuracy").GetDouble(), 3);
        Assert.Equal(10, report.GetProperty("confusion_matrix").GetArrayLength());
        Assert.Equal(200, report.GetProperty("per_class").EnumerateArray().Sum(c => c.GetProperty("support").GetInt32()));
        var (missing, _, missingErr) = Run("evaluate", "--model", Path.Combine(_dir, "none.ftm"));
        Assert.Equal(1, missing);
        Assert.Contains("none.ftm", missingErr, StringComparison.Ordinal);
    }

    [Fact]
    public void Export_writes_onnx_that_fine_tunes_again_from_train()
    {
        string model = Path.Combine(_dir, "m.ftm"), onnx = Path.Combine(_dir, "m.onnx");
        var (code, _, err) = Run("train", "--model", "resnet", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--out", model);
        Assert.True(code == 0, err);
        (code, var output, err) = Run("export", "--model", model, "--onnx", onnx, "--json");
        Assert.True(code == 0, err);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal("image", json.GetProperty("input").GetString());
        Assert.Equal("probabilities", json.GetProperty("output").GetString());
        Assert.Equal("Ankle boot", json.GetProperty("labels")[9].GetString());
        var imported = Onnx.OnnxImporter.Load(onnx);
        Assert.Equal("resnet", imported.Architecture);

        // The exported file is a pretrained backbone for train --model FILE.onnx (the whole recipe, capped at 3 epochs).
        (code, output, err) = Run("train", "--model", onnx, "--epochs", "3", "--lr", "0.003", "--json");
        Assert.True(code == 0, err);
        json = JsonDocument.Parse(output).RootElement;
        Assert.Equal(3, json.GetProperty("epochs").GetInt32());
        Assert.Equal("resnet", json.GetProperty("model").GetString());

        (code, _, err) = Run("export", "--model", Path.Combine(_dir, "missing.ftm"), "--onnx", onnx);
        Assert.Equal(1, code);
        Assert.Contains("missing.ftm", err, StringComparison.Ordinal);
        (code, _, err) = Run("train", "--model", "vgg16");
        Assert.Equal(2, code);
        Assert.Contains("vgg16", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_on_an_image_folder_then_predict_its_files()
    {
        var mini = FashionMnistMini.Load("train");
        string root = Path.Combine(_dir, "photos");
        for (int i = 0; i < 90; i++)
        {
            int label = mini.Labels[i] % 3;
            Directory.CreateDirectory(Path.Combine(root, $"kind{label}"));
            Vision.Encoders.PngEncoder.Save(Path.Combine(root, $"kind{label}", $"{i:D3}.png"), mini.Images.AsSpan(i * 784, 784), 28, 28, 1);
        }
        string broken = Path.Combine(root, "kind1", "broken.jpg");
        File.WriteAllBytes(broken, [0xFF, 0xD8, 0xFF, 0xE0, 0, 4]);

        var (code, _, err) = Run("train", "--data", root, "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--size", "28");
        Assert.Equal(1, code);
        Assert.Contains(broken, err, StringComparison.Ordinal);

        string model = Path.Combine(_dir, "kinds.ftm");
        (code, var output, err) = Run("train", "--data", root, "--skip-invalid", "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--size", "28", "--out", model);
        Assert.True(code == 0, err);
        Assert.Contains("1 file skipped", output, StringComparison.Ordinal);
        Assert.Contains(broken, output, StringComparison.Ordinal);

        (code, output, err) = Run("predict", "--model", model, Path.Combine(root, "kind0"), "--json");
        Assert.True(code == 0, err);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal(["kind0", "kind1", "kind2"], json.GetProperty("labels").EnumerateArray().Select(e => e.GetString()));
        var predictions = json.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(Directory.GetFiles(Path.Combine(root, "kind0")).Length, predictions.Count);
        var trained = TrainedModel.Load(model);
        foreach (var prediction in predictions)
        {
            var score = prediction.GetProperty("score").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            Assert.Equal(1.0, score.Sum(), 3);
            Assert.Equal(trained.Classes[Array.IndexOf(score, score.Max())], prediction.GetProperty("label").GetString());
        }

        // A large folder is scored 256 images at a time, each result written as it comes: a broken file after the
        // first chunk stops predict with its name, and the first chunk's results are already out.
        string many = Path.Combine(_dir, "many");
        Directory.CreateDirectory(many);
        var png = File.ReadAllBytes(Directory.GetFiles(Path.Combine(root, "kind0"))[0]);
        for (int i = 0; i < 300; i++) File.WriteAllBytes(Path.Combine(many, $"{i:D3}.png"), png);
        File.WriteAllBytes(Path.Combine(many, "zz-broken.png"), png[..40]);
        (code, output, err) = Run("predict", "--model", model, many);
        Assert.Equal(1, code);
        Assert.Contains("zz-broken.png", err, StringComparison.Ordinal);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(256, lines.Length);
        Assert.EndsWith("000.png", lines[0].Split('\t')[0], StringComparison.Ordinal);

        // A separate validation folder: all of --data trains, all of --valid validates, in the training classes' order.
        string validRoot = Path.Combine(_dir, "valid");
        for (int i = 90; i < 120; i++)
        {
            int label = mini.Labels[i] % 3;
            Directory.CreateDirectory(Path.Combine(validRoot, $"kind{label}"));
            Vision.Encoders.PngEncoder.Save(Path.Combine(validRoot, $"kind{label}", $"{i:D3}.png"), mini.Images.AsSpan(i * 784, 784), 28, 28, 1);
        }
        (code, output, err) = Run("train", "--data", root, "--valid", validRoot, "--skip-invalid", "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--size", "28", "--json");
        Assert.True(code == 0, err);
        var counts = JsonDocument.Parse(output).RootElement;
        Assert.Equal((90, 30), (counts.GetProperty("train_images").GetInt32(), counts.GetProperty("valid_images").GetInt32()));

        (code, _, err) = Run("predict", "--model", model, Path.Combine(_dir, "nothing-here.png"));
        Assert.Equal(1, code);
        Assert.Contains("nothing-here.png", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Image_convert_writes_what_the_decoder_produced()
    {
        var pixels = new byte[5 * 3 * 3];
        new Random(3).NextBytes(pixels);
        string png = Path.Combine(_dir, "in.png"), ppm = Path.Combine(_dir, "out.ppm");
        Vision.Encoders.PngEncoder.Save(png, pixels, 5, 3, 3);
        var (code, _, err) = Run("image", "convert", png, ppm);
        Assert.True(code == 0, err);
        var bytes = File.ReadAllBytes(ppm);
        Assert.Equal("P6\n5 3\n255\n"u8.ToArray(), bytes.Take(11).ToArray());
        Assert.Equal(pixels, bytes.Skip(11).ToArray());
        (code, _, err) = Run("image", "convert", ppm, Path.Combine(_dir, "out.gif"));
        Assert.Equal(2, code);
        Assert.Contains("out.gif", err, StringComparison.Ordinal);
    }

    private static readonly string[] Interruptible = ["train", "--model", "resnet", "--recipe", "one-cycle", "--epochs", "6", "--lr", "0.01", "--seed", "5", "--threads", "2"];

    // The run that is not interrupted, trained once for the signal tests.
    private static readonly Lazy<Dictionary<string, float[]>> Uninterrupted = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("fasttrain-whole-").FullName;
        try
        {
            string whole = Path.Combine(dir, "whole.ftm");
            var (code, _, err) = Run([.. Interruptible, "--out", whole]);
            Assert.True(code == 0, err);
            return TrainedModel.Load(whole).Network.StateDict().ToDictionary(p => p.Key, p => p.Value.ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    });

    [Theory]
    [InlineData("INT", 130)]   // Ctrl+C
    [InlineData("TERM", 143)]  // kill, timeout, docker stop, Kubernetes
    [InlineData("HUP", 129)]   // a closed terminal
    public async Task A_stop_signal_writes_a_checkpoint_and_resume_finishes_bit_identically(string signal, int exitCode)
    {
        string resumed = Path.Combine(_dir, "resumed.ftm"), dir = Path.Combine(_dir, "ck");
        var whole = Uninterrupted.Value;

        // Interrupt a second run once its first epoch's checkpoint exists. It starts through env with every signal's
        // default handling: a test run launched in the background (nohup, `&`) inherits SIGINT and SIGHUP ignored,
        // and the runtime then leaves them ignored.
        var interrupted = Tool([.. Interruptible, "--checkpoint-dir", dir, "--out", resumed]);
        interrupted.ArgumentList.Insert(0, interrupted.FileName);
        interrupted.ArgumentList.Insert(0, "--default-signal");
        interrupted.FileName = "env";
        using var p = Process.Start(interrupted)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!(Directory.Exists(dir) && Directory.GetFiles(dir, "*.ftc").Length > 0) && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)) await Task.Delay(20);
        await Task.Delay(300); // into the second epoch, so that the signal lands mid-epoch
        Assert.False(p.HasExited, "training ended before it could be interrupted");
        // The managed engine was chosen (auto, no GPU here) without loading libtorch to ask: it would hold ~130 MB.
        Assert.DoesNotContain("libtorch_cpu", File.ReadAllText($"/proc/{p.Id}/maps"), StringComparison.Ordinal);
        using (var kill = Process.Start("kill", ["-" + signal, p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!) await kill.WaitForExitAsync();
        await p.WaitForExitAsync();
        string said = await stdout + await stderr;
        Assert.True(p.ExitCode == exitCode, $"exit {p.ExitCode}: {said}");
        Assert.Contains("checkpoint written", said, StringComparison.Ordinal);
        Assert.False(File.Exists(resumed));
        var written = Directory.GetFiles(dir, "*.ftc");
        Assert.Contains(written, f => int.Parse(Path.GetFileNameWithoutExtension(f)[11..], System.Globalization.CultureInfo.InvariantCulture) % 18 != 0); // a mid-epoch one

        var (code, output, err) = Run([.. Interruptible, "--checkpoint-dir", dir, "--resume", "--out", resumed]);
        Assert.True(code == 0, err);
        Assert.Contains("resuming from", output, StringComparison.Ordinal);
        var b1 = TrainedModel.Load(resumed).Network.StateDict();
        foreach (var (name, values) in whole) Assert.Equal(values, b1[name].ToArray());
    }

    [SmallDiskFact]
    public void A_model_that_does_not_fit_on_the_disk_is_one_clear_error_and_the_previous_file_stays()
    {
        using var disk = new SmallDisk(16 * 1024);
        string model = Path.Combine(disk.Path, "m.ftm");
        File.WriteAllText(model, "the previous model");
        var (code, _, err) = Run("train", "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.03", "--batch", "32", "--tta", "false", "--out", model);
        Assert.True(code == 1, $"exit {code}: {err}");
        Assert.Contains($"error: '{model}' could not be written: its disk is full", err, StringComparison.Ordinal);
        Assert.Equal("the previous model", File.ReadAllText(model));
        Assert.Equal([model], Directory.GetFiles(disk.Path));
    }

    [Fact]
    public void Resume_without_a_checkpoint_folder_is_a_usage_error()
    {
        var (code, _, err) = Run("train", "--resume");
        Assert.Equal(2, code);
        Assert.Contains("--checkpoint-dir", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_writes_a_report_and_consumption_code_that_compiles_and_predicts()
    {
        string model = Path.Combine(_dir, "m.ftm"), report = Path.Combine(_dir, "report.html");
        var (code, _, err) = Run("train", "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--out", model, "--report", report);
        Assert.True(code == 0, err);
        var html = File.ReadAllText(report);
        foreach (var id in new[] { "lr-finder", "schedule", "losses", "confusion", "top-losses", "tta", "timing" })
            Assert.Contains($"<section id=\"{id}\">", html, StringComparison.Ordinal);

        // Build the generated program against the library assemblies and run it on one image.
        string source = Path.Combine(_dir, "m.Predict.cs");
        Assert.True(File.Exists(source));
        string app = Path.Combine(_dir, "app");
        Directory.CreateDirectory(app);
        File.Copy(source, Path.Combine(app, "Program.cs"));
        var references = string.Join("\n", new[] { "MLNet.FastTrain", "MLNet.FastTrain.Vision", "MLNet.FastTrain.Engine", "System.Numerics.Tensors" }
            .Select(n => $"    <Reference Include=\"{n}\"><HintPath>{Path.Combine(AppContext.BaseDirectory, n + ".dll")}</HintPath></Reference>"));
        File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
              <ItemGroup>
            {references}
              </ItemGroup>
            </Project>
            """);
        var mini = FashionMnistMini.Load("t10k");
        string image = Path.Combine(_dir, "item7.png");
        Vision.Encoders.PngEncoder.Save(image, mini.Images.AsSpan(7 * 784, 784), 28, 28, 1);

        var (exit, printed, errors) = await Exec(Command("dotnet", ["run", "-c", "Release", "--", image], app));
        Assert.True(exit == 0, printed + errors);
        var lines = printed.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        (code, var predicted, err) = Run("predict", "--model", model, image, "--json");
        Assert.True(code == 0, err);
        var expected = JsonDocument.Parse(predicted).RootElement.GetProperty("predictions")[0].GetProperty("label").GetString();
        Assert.Equal(expected, lines[0].Trim());
        Assert.Equal(11, lines.Length); // the label, then one line per class
    }

    [Fact]
    public async Task Train_out_zip_writes_an_MLNet_model_that_a_separate_app_loads_and_scores_like_predict()
    {
        string model = Path.Combine(_dir, "m.zip");
        var (code, _, err) = Run("train", "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--out", model);
        Assert.True(code == 0, err);
        Assert.True(File.Exists(model));
        Assert.False(File.Exists(model + ".tmp"));

        // A fresh process that knows only ML.NET and references this package loads the zip and predicts one file.
        string source = Path.Combine(_dir, "m.Predict.cs");
        string app = Path.Combine(_dir, "mlapp");
        Directory.CreateDirectory(app);
        File.Copy(source, Path.Combine(app, "Program.cs"));
        string library = Path.Combine(AppContext.BaseDirectory, "MLNet.FastTrain.MLNet.dll");
        File.WriteAllText(Path.Combine(app, "mlapp.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Microsoft.ML" Version="5.0.1" />
                <PackageReference Include="Microsoft.ML.ImageAnalytics" Version="5.0.1" />
                <PackageReference Include="Microsoft.ML.OnnxTransformer" Version="5.0.1" />
                <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="1.31.1" />
                <PackageReference Include="SkiaSharp" Version="2.88.9" />
                <PackageReference Include="SkiaSharp.NativeAssets.Linux.NoDependencies" Version="2.88.9" />
                <Reference Include="MLNet.FastTrain.MLNet"><HintPath>{library}</HintPath></Reference>
              </ItemGroup>
            </Project>
            """);
        // The test tree's central package versions must not reach this stand-alone project.
        File.WriteAllText(Path.Combine(app, "Directory.Packages.props"), "<Project><PropertyGroup><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup></Project>");
        File.WriteAllText(Path.Combine(app, "Directory.Build.props"), "<Project />");
        var mini = FashionMnistMini.Load("t10k");
        string image = Path.Combine(_dir, "item3.png");
        Vision.Encoders.PngEncoder.Save(image, mini.Images.AsSpan(3 * 784, 784), 28, 28, 1);

        var (exit, printed, errors) = await Exec(Command("dotnet", ["run", "-c", "Release", "--", image], app));
        Assert.True(exit == 0, printed + errors);
        // What the program printed comes after the build's messages: the label, then one line per class.
        var lines = printed.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^11..];
        Assert.True(lines[1].StartsWith("  T-shirt/top: ", StringComparison.Ordinal), printed);

        // The same image through the tool's own scoring of the same weights.
        string ftm = Path.Combine(_dir, "m.ftm");
        (code, _, err) = Run("train", "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--out", ftm);
        Assert.True(code == 0, err);
        (code, var predicted, err) = Run("predict", "--model", ftm, image, "--json");
        Assert.True(code == 0, err);
        var first = JsonDocument.Parse(predicted).RootElement.GetProperty("predictions")[0];
        Assert.Equal(first.GetProperty("label").GetString(), lines[0].Trim());
        var scores = first.GetProperty("score").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < 10; i++)
        {
            double fromZip = double.Parse(lines[1 + i].Split(':')[^1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(scores[i], fromZip, 4);
        }
    }

    [Fact]
    public async Task The_tool_packs_installs_and_trains_on_its_bundled_data()
    {
        string packages = Path.Combine(_dir, "packages"), tools = Path.Combine(_dir, "tools");
        await Dotnet(_dir, "pack", RepoPaths.Get("src", "MLNet.FastTrain.Cli", "MLNet.FastTrain.Cli.csproj"), "-c", "Release", "--no-build", "-o", packages);
        Assert.Single(Directory.GetFiles(packages, "MLNet.FastTrain.Cli.*.nupkg"));
        await Dotnet(_dir, "tool", "install", "MLNet.FastTrain.Cli", "--tool-path", tools, "--add-source", packages);

        // The bundled subset travels inside the package, beside the tool's assemblies.
        var bundled = Assert.Single(Directory.GetDirectories(tools, "fashion-mnist-mini", SearchOption.AllDirectories));
        Assert.Equal(4, Directory.GetFiles(bundled, "*.gz").Length);
        var installed = Command(Path.Combine(tools, "fasttrain"), ["train", "--data", bundled, "--model", "simple", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.01", "--json"], _dir);
        installed.Environment["FASTTRAIN_THREADS"] = "2";
        var (code, output, err) = await Exec(installed);
        Assert.True(code == 0, output + err);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal(1, json.GetProperty("epochs").GetInt32());
    }

    private static async Task Dotnet(string workingDirectory, params string[] args)
    {
        var (code, output, err) = await Exec(Command("dotnet", args, workingDirectory));
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)}: {output}{err}");
    }

    [Fact]
    public async Task A_terminal_gets_progress_bars_and_a_summary_table_and_a_pipe_gets_plain_lines()
    {
        // util-linux's script runs the tool on a pseudo-terminal, as a user's shell would.
        string tool = $"dotnet {Path.Combine(AppContext.BaseDirectory, "fasttrain.dll")} train --model simple --recipe one-cycle --epochs 2 --lr 0.01";
        var psi = Command("script", ["-qec", tool, "/dev/null"]);
        psi.Environment["TERM"] = "xterm-256color";
        psi.Environment["FASTTRAIN_THREADS"] = "2";
        psi.Environment["FASTTRAIN_DATA"] = RepoPaths.Get("data", "fashion-mnist-mini");
        var (exit, screen, errors) = await Exec(psi);
        Assert.True(exit == 0, screen + errors);
        Assert.Contains("━", screen, StringComparison.Ordinal);          // progress bars
        Assert.Contains("img/s", screen, StringComparison.Ordinal);
        Assert.Contains("training summary", screen, StringComparison.Ordinal);

        var (code, output, err) = Run("train", "--model", "simple", "--recipe", "one-cycle", "--epochs", "2", "--lr", "0.01");
        Assert.True(code == 0, err);
        Assert.DoesNotContain("━", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", output, StringComparison.Ordinal); // no escape sequences in a pipe
        Assert.Contains("epoch 2/2: train_loss", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_on_the_torch_engine_reports_it_and_writes_a_model_the_managed_engine_loads()
    {
        string model = Path.Combine(_dir, "torch.ftm");
        var (code, stdout, stderr) = Run("train", "--backend", "torch", "--device", "cpu", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.003", "--model", "simple", "--json", "--out", model);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        Assert.True(doc.RootElement.GetProperty("accuracy").GetDouble() > 0.6, stdout);
        Assert.Equal("torch", doc.RootElement.GetProperty("backend").GetString());
        var loaded = TrainedModel.Load(model);                                  // a managed-engine model like any other
        Assert.Equal("simple", loaded.Architecture);
    }

    [Fact]
    public void A_gpu_where_there_is_none_or_an_unknown_backend_is_a_clear_error()
    {
        var (code, _, stderr) = Run("train", "--backend", "torch", "--device", "cuda:0", "--epochs", "1");
        Assert.Equal(1, code);
        Assert.Contains("libtorch-cuda-12.8-linux-x64", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Run("train", "--backend", "jax", "--epochs", "1");
        Assert.Equal(2, code);
        Assert.Contains("Unknown backend 'jax'", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Run("train", "--precision", "half", "--epochs", "1");
        Assert.Equal(2, code);
        Assert.Contains("Unknown precision 'half'", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Run("train", "--backend", "managed", "--precision", "bfloat16", "--epochs", "1");
        Assert.Equal(2, code);
        Assert.Contains("float32 only", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Lr_find_reports_curve_and_suggestions_and_writes_a_plot()
    {
        string plot = Path.Combine(_dir, "lr.svg");
        var (code, output, err) = Run("lr-find", "--model", "simple", "--batch", "32", "--plot", plot, "--json");
        Assert.True(code == 0, err);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal(json.GetProperty("lr").GetArrayLength(), json.GetProperty("loss").GetArrayLength());
        Assert.True(json.GetProperty("suggested").GetDouble() > 0);
        Assert.True(json.GetProperty("suggestions").TryGetProperty("steep", out _));
        Assert.StartsWith("<svg", File.ReadAllText(plot), StringComparison.Ordinal);
    }

    [Fact]
    public void Memory_budget_picks_and_explains_the_batch_size_or_refuses_clearly()
    {
        // The budget bounds the whole process (runtime, data, model, loader, validation), so it is a realistic one.
        var (code, output, err) = Run("train", "--model", "simple", "--memory-budget", "512MB", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.003");
        Assert.True(code == 0, err);
        Assert.Contains("for a budget of 512.0 MB", output, StringComparison.Ordinal);
        Assert.Contains("the process so far", output, StringComparison.Ordinal);
        Assert.Contains("per image", output, StringComparison.Ordinal);
        // The managed heap is capped at the budget less what the process holds outside it.
        var cap = System.Text.RegularExpressions.Regex.Match(output, @"the managed heap is capped at ([0-9.]+) MB");
        Assert.True(cap.Success, output);
        Assert.InRange(double.Parse(cap.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 100, 511);
        var (tooSmall, _, tooSmallErr) = Run("train", "--memory-budget", "1MB");
        Assert.Equal(1, tooSmall);
        Assert.Contains("cannot train this model", tooSmallErr, StringComparison.Ordinal);

        (code, output, err) = Run("train", "--model", "simple", "--batch", "auto", "--recipe", "one-cycle", "--epochs", "1", "--lr", "0.003", "--json");
        Assert.True(code == 0, err);
        Assert.Equal(32, JsonDocument.Parse(output).RootElement.GetProperty("batch_size").GetInt32()); // 600 images: the default rule gives 32
        foreach (var bad in new[] { "0", "big", "1.5" })
        {
            (code, _, err) = Run("train", "--batch", bad);
            Assert.Equal(2, code);
            Assert.Contains("--batch", err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Show_batch_writes_a_png_grid()
    {
        string png = Path.Combine(_dir, "grid.png");
        var (code, output, err) = Run("show-batch", "--augment", "--count", "9", "--out", png);
        Assert.True(code == 0, err);
        Assert.Contains("labels row by row", output, StringComparison.Ordinal);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, File.ReadAllBytes(png)[..4]);
    }

    [Fact]
    public void Time_budget_stops_cleanly_and_tta_is_reported()
    {
        var (code, output, err) = Run("train", "--model", "simple", "--time-budget", "1s", "--lr", "0.003", "--tta", "--json");
        Assert.True(code == 0, err);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Contains("time budget", json.GetProperty("stop_reason").GetString(), StringComparison.Ordinal);
        Assert.InRange(json.GetProperty("accuracy_tta").GetDouble(), 0, 1);
        (code, output, err) = Run("train", "--model", "simple", "--time-budget", "1s", "--lr", "0.003", "--tta");
        Assert.True(code == 0, err);
        Assert.Matches(@"; with TTA \d+\.\d\d %", output);
    }

    [Theory]
    [InlineData(2, "train", "--time-budget", "soon")]
    [InlineData(2, "show-batch")]
    [InlineData(2, "train", "--memory-budget", "lots")]
    [InlineData(2, "train", "--batch", "0")]
    [InlineData(2, "train", "--model", "vgg")]
    [InlineData(2, "train", "--lr", "fast")]
    [InlineData(2, "train", "--no-such-option")]
    [InlineData(1, "train", "--data", "/no/such/folder")]
    public void Bad_input_gives_one_clear_line_and_the_documented_exit_code(int expected, params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(expected, code);
        Assert.StartsWith("error: ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);      // no stack trace without --verbose
    }

    [Fact]
    public void A_damaged_data_folder_is_a_user_error_naming_the_file()
    {
        File.WriteAllBytes(Path.Combine(_dir, "train-images-idx3-ubyte.gz"), [1, 2, 3]);
        var (missingCode, _, missingErr) = Run("train", "--data", _dir);
        Assert.Equal(1, missingCode);
        Assert.Contains("train-labels-idx1-ubyte", missingErr, StringComparison.Ordinal);      // the missing file is named
        File.WriteAllBytes(Path.Combine(_dir, "train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 1, 3]);
        var (code, _, err) = Run("train", "--data", _dir);
        Assert.Equal(1, code);
        Assert.Contains("train-images-idx3-ubyte.gz", err, StringComparison.Ordinal);
    }
}
