using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MLNet.FastTrain.Distributed;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.FineTuning;
using MLNet.FastTrain.Learning;
using MLNet.FastTrain.Models;
using MLNet.FastTrain.Vision.Datasets;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary><c>fasttrain train</c>: trains a zoo network on an IDX folder (or the bundled data) with a recipe.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = DataSource.Description };
        var valid = new Option<string?>("--valid") { Description = "validate on this IDX folder, image folder or CSV (all of --data then trains)" };
        var size = new Option<string?>("--size")
        {
            Description = $"image side: N, or A:B for progressive resizing (A for the first half of the epochs, then B); image folders and CSVs load at N or B (default {DataSource.DefaultImageSize})",
        };
        var checkpointDir = new Option<string?>("--checkpoint-dir") { Description = "write a checkpoint here after every epoch, and when Ctrl+C stops training" };
        var resume = new Option<bool>("--resume") { Description = "continue from the newest checkpoint in --checkpoint-dir (same options and seed)" };
        var skipInvalid = new Option<bool>("--skip-invalid") { Description = "leave out image files that cannot be decoded, and list them, instead of stopping" };
        var cache = new Option<string?>("--cache")
        {
            Description = "keep image folders' and CSVs' images, decoded at their size, in an on-disk cache in this folder: built once, extended as files are added or change, and read as training goes instead of held in memory",
        };
        var model = new Option<string>("--model") { Description = ModelSource.Description, DefaultValueFactory = _ => "resnet9" };
        var scratch = new Option<bool>("--scratch") { Description = "train a named pretrained backbone's layout (resnet18-imagenet) from fresh weights instead" };
        var recipe = new Option<string>("--recipe") { Description = "fine-tune, sgdr or one-cycle", DefaultValueFactory = _ => "fine-tune" };
        recipe.AcceptOnlyFromAmong("fine-tune", "sgdr", "one-cycle");
        var epochs = new Option<int?>("--epochs") { Description = "most epochs any recipe trains (one-cycle: its length, default 3)" };
        var cycles = new Option<int>("--cycles") { Description = "SGDR cycles", DefaultValueFactory = _ => 3 };
        var cycleLen = new Option<int>("--cycle-len") { Description = "epochs in the first SGDR cycle", DefaultValueFactory = _ => 1 };
        var cycleMult = new Option<int>("--cycle-mult") { Description = "growth of each SGDR cycle", DefaultValueFactory = _ => 2 };
        var lr = new Option<string>("--lr") { Description = "auto (LR finder), a number, or LOW:HIGH", DefaultValueFactory = _ => "auto" };
        var suggest = new Option<string>("--suggest")
        {
            Description = "the LR finder's rule when --lr is auto: auto (the default: ranked when an epoch has at most 300 steps, otherwise combined), combined (valley, lifted towards minimum by at most 10×), ranked (short runs at the valley, the combined rate and between them, scored on validation images), valley (fastai's), steep, minimum (the lowest loss's rate / 10) or slide",
            DefaultValueFactory = _ => "auto",
        };
        suggest.AcceptOnlyFromAmong("auto", "combined", "ranked", "valley", "steep", "minimum", "slide");
        var batch = new Option<string>("--batch")
        {
            Description = "images per batch, or auto: a power of two near 1/16 of the training set, between 16 and 128",
            DefaultValueFactory = _ => "auto",
        };
        var budget = new Option<string?>("--memory-budget") { Description = "keep the whole process within this much memory (e.g. 1GB): picks the batch size that fits and caps the managed heap; overrides --batch" };
        var timeBudget = new Option<string?>("--time-budget") { Description = "stop cleanly after this long, keeping the best model (e.g. 10m, 90s, 1h)" };
        var tta = new Option<bool>("--tta") { Description = "also report accuracy with test-time augmentation (accuracy_tta); on by default, --tta false skips it", DefaultValueFactory = _ => true };
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "cores to use (libtorch's threads too, on the torch engine); under mpirun, the cores over the ranks on this machine", DefaultValueFactory = _ => Math.Max(1, Environment.ProcessorCount / LocalRanks()) };
        var distributed = new Option<bool>("--distributed") { Description = "train data-parallel with the other ranks of an MPI job (mpirun -np N fasttrain train --distributed ...); --batch is each rank's" };
        var scaleLr = new Option<bool>("--scale-lr") { Description = "with --distributed, train at the rank count times the learning rate (linear scaling rule); --scale-lr false keeps it", DefaultValueFactory = _ => true };
        var warmup = new Option<double>("--warmup-epochs") { Description = "with --distributed, reach the scaled learning rate linearly over this many epochs of each fit", DefaultValueFactory = _ => 0 };
        var (backend, device, precision) = CliSupport.EngineOptions();
        var output = new Option<string?>("--out") { Description = "write the trained model here: .ftm, .onnx (export), or .zip (an ML.NET model for mlContext.Model.Load)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object with the results" };
        var report = new Option<string?>("--report") { Description = "write a self-contained HTML report here (charts, confusion matrix, top losses)" };
        var command = new Command("train", "Train a classifier with fast.ai's recipe.")
        {
            data, valid, size, skipInvalid, cache, checkpointDir, resume, model, scratch, recipe, epochs, cycles, cycleLen, cycleMult, lr, suggest, batch, budget, timeBudget, tta, seed, threads, distributed, scaleLr, warmup, backend, device, precision, output, json, report,
        };
        command.SetAction(parse => CliSupport.Run(parse, ct =>
        {
            var clock = Stopwatch.StartNew();
            if (parse.GetValue(warmup) is var w && !(w >= 0)) throw new ArgumentException($"--warmup-epochs must be zero or more, not {w}.");
            // Data-parallel (docs/design.md §11): rank 0 decides what is decided once and writes every file; the
            // other ranks print nothing (their errors still reach stderr).
            using var mpi = parse.GetValue(distributed) ? Mpi.MpiCollective.Start() : null;
            ICollective world = mpi is null ? SingleProcess.Instance : mpi;
            bool root = world.Rank == 0;
            if (!root) Console.SetOut(TextWriter.Null);
            int t = parse.GetValue(threads);
            int? givenBatch = ParseBatch(parse.GetValue(batch)!);
            if (t < 1) throw new ArgumentException($"--threads must be positive, not {t}.");
            if (parse.GetValue(epochs) is < 1) throw new ArgumentException("--epochs must be positive.");
            var (single, range) = CliSupport.ParseLr(parse.GetValue(lr)!);
            string arch = parse.GetValue(model)!;
            ModelSource.Validate(arch);
            TimeSpan? budgetSpan = parse.GetValue(timeBudget) is { } tb ? CliSupport.ParseDuration(tb, "--time-budget") : null;
            EngineSettings.Threads = t;
            ulong s = parse.GetValue(seed);
            Generator.Default.ManualSeed(s);

            bool quiet = parse.GetValue(json);
            var (small, large) = ParseSize(parse.GetValue(size));
            string? checkpoints = parse.GetValue(checkpointDir);
            if (parse.GetValue(resume) && checkpoints is null) throw new ArgumentException("--resume needs --checkpoint-dir.");
            var (trainSet, validSet, folder) = DataSource.Load(parse.GetValue(data), large, null, parse.GetValue(skipInvalid), s,
                quiet ? null : Console.WriteLine, parse.GetValue(valid), parse.GetValue(cache));
            // IDX images come at their own size; another final size makes the loaders resize every batch (bilinear up, area down).
            (int Height, int Width) trainSize = large is int loadedSize ? (loadedSize, loadedSize) : (trainSet.Height, trainSet.Width);
            bool resizeBatches = trainSize != (trainSet.Height, trainSet.Width);
            if (arch == "simple" && (trainSize != (28, 28) || small is int s0 && s0 != 28))
                throw new ArgumentException("--model simple takes 28×28 images only (its classifier has a fixed size); use --size 28, or a ResNet, whose adaptive pooling takes any size.");
            Module? pretrained = null;
            (float[] Mean, float[] Std)? pretrainedNormalization = null;
            if (ModelSource.IsPretrained(arch) && !(parse.GetValue(scratch) && Onnx.PretrainedModels.IsName(arch)))
            {
                var loaded = ModelSource.LoadPretrained(parse.GetValue(model)!, trainSet, s, trainSize);
                (pretrained, arch, pretrainedNormalization) = (loaded.Network, loaded.Architecture, loaded.Normalization);
            }
            if (arch == Onnx.OnnxModel.GraphArchitecture && parse.GetValue(output) is { } target && !target.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"--out '{target}': a network imported as a general ONNX graph is saved as .onnx only.");
            int? batchSize = givenBatch;
            string? advice = null;
            Tuning.BatchSizeAdvice? sized = null;
            long outsideHeap = 0;
            var engineChoice = new Engines.EngineChoice(parse.GetValue(backend)!, parse.GetValue(device)!, t, Precision: parse.GetValue(precision)!);
            if (parse.GetValue(budget) is not null && !root)
            {
                batchSize = (int)world.Broadcast(0.0); // rank 0 probes, on this machine's memory, for every rank
            }
            else if (parse.GetValue(budget) is { } text)
            {
                outsideHeap = Tuning.BatchSizeFinder.OutsideManagedHeap(); // before the probes' buffers come and go
                var probeNet = pretrained ?? Models.TrainedModel.CreateNetwork(arch, trainSet.Channels, trainSet.Classes.Count);
                var finderOptions = new Tuning.BatchSizeFinder.Options
                {
                    MemoryBudgetBytes = CliSupport.ParseBytes(text, "--memory-budget"), MaxBatchSize = Math.Max(1, trainSet.Count / 4),
                    // The validation loader's batches are 256 images, or all of a smaller validation set.
                    ValidationBatchSize = Math.Min(256, validSet.Count),
                };
                var input = (trainSet.Channels, trainSize.Height, trainSize.Width);
                // Another engine's steps are probed on that engine (libtorch's memory is its own allocator's).
                var probeEngine = engineChoice.Resolve(out _, arch)?.Invoke(probeNet, new Engine.Optimizers.Sgd(probeNet.Parameters(), 0.01));
                try
                {
                    sized = probeEngine is null ? Tuning.BatchSizeFinder.Find(probeNet, input, trainSet.Classes.Count, finderOptions)
                        : Tuning.BatchSizeFinder.Find(probeEngine, input, trainSet.Classes.Count, finderOptions);
                }
                finally
                {
                    probeEngine?.Release();
                }
                batchSize = sized.BatchSize;
                world.Broadcast(batchSize.Value);
            }
            var fineTune = pretrained is null ? null : new DifferentialFineTune(pretrained);
            var learner = fineTune is null
                ? Learner.ForImageClassification(trainSet, validSet, arch, batchSize, s)
                : Learner.ForImageClassification(trainSet, validSet, pretrained!, fineTune.CreateParamGroups(), batchSize, s, pretrainedNormalization);
            if (resizeBatches)
            {
                if (learner.TrainData is DataLoader trainLoader) trainLoader.ImageSize = trainSize;
                if (learner.ValidData is DataLoader validLoader) validLoader.ImageSize = trainSize;
            }
            if (mpi is not null)
                Callbacks.DataParallel.Attach(learner, new Callbacks.DataParallelOptions { Collective = world, ScaleLearningRate = parse.GetValue(scaleLr), WarmupEpochs = parse.GetValue(warmup) });
            double loadSeconds = clock.Elapsed.TotalSeconds;
            long beforeEngine = sized is null ? 0 : Tuning.BatchSizeFinder.OutsideManagedHeap();
            string engineText = engineChoice.ApplyTo(learner, arch);
            if (sized is not null)
            {
                // After the engine is chosen: a native engine's libraries, once loaded, are part of what the heap cap leaves
                // out, and so is what its steps will allocate natively (probed on it: the larger step, gradients, optimizer state).
                long outside = learner.Engine.Name == "managed"
                    ? outsideHeap + Math.Max(0, Tuning.BatchSizeFinder.OutsideManagedHeap() - beforeEngine)
                    : Tuning.BatchSizeFinder.OutsideManagedHeap() + sized.GradientBytes + sized.OptimizerStateBytes
                      + Math.Max(sized.FixedStepBytes + sized.BytesPerSample * sized.BatchSize, sized.ValidationStepBytes);
                long heapCap = Tuning.BatchSizeFinder.CapManagedHeap(sized.BudgetBytes, outside);
                advice = sized.Explanation + string.Create(CultureInfo.InvariantCulture, $"  the managed heap is capped at {heapCap / (1024.0 * 1024.0):F1} MB, the budget less what the process holds outside it\n");
            }
            int b = learner.TrainData.BatchSize;
            bool asJson = parse.GetValue(json);
            bool live = !asJson && ConsoleProgress.Available;
            var held = new List<string>();
            if (!asJson) learner.Log += (_, m) => { if (live) held.Add(m); else Console.WriteLine(m); };
            if (!asJson && advice is not null) Console.Write(advice);
            if (!asJson) Console.WriteLine($"{trainSet.Count} training and {validSet.Count} validation images from {folder}; {arch}, batch {b}, {t} threads, seed {s}; {engineText}");
            if (!asJson && mpi is not null)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"data-parallel: {world.Size} ranks × batch {b} = {world.Size * b} a step; ")
                    + (parse.GetValue(scaleLr) && world.Size > 1 ? string.Create(CultureInfo.InvariantCulture, $"learning rates × {world.Size} (linear scaling, warm-up {parse.GetValue(warmup):G3} epochs)") : "learning rates as found or given"));

            var options = new RecipeOptions
            {
                Recipe = parse.GetValue(recipe) switch { "sgdr" => RecipeKind.Sgdr, "one-cycle" => RecipeKind.OneCycle, _ => RecipeKind.FineTune },
                MaxEpochs = parse.GetValue(epochs),
                Epochs = parse.GetValue(epochs) ?? 3,
                Cycles = parse.GetValue(cycles),
                CycleLength = parse.GetValue(cycleLen),
                CycleMult = parse.GetValue(cycleMult),
                LearningRate = single ?? range?.High,
                Suggestion = Enum.Parse<Tuning.LrSuggestion>(parse.GetValue(suggest)!, ignoreCase: true),
                TimeBudget = budgetSpan,
                CheckpointDirectory = checkpoints,
            };
            if (parse.GetValue(resume))
            {
                if (fineTune is not null && options.Recipe == RecipeKind.FineTune)
                    throw new ArgumentException("--resume covers the sgdr and one-cycle recipes and the fine-tune recipe of a zoo network, not fine-tuning a model file.");
                var latest = Checkpoint.Latest(checkpoints!) ?? throw new FileNotFoundException($"--resume: no checkpoint in '{checkpoints}'.", checkpoints);
                options.Resume = Checkpoint.Load(latest);
                if (!asJson) Console.WriteLine($"resuming from {latest}");
            }
            if (small is int first && large is int last && first != last)
            {
                int planned = options.Recipe == RecipeKind.OneCycle ? options.Epochs : PlannedSgdrEpochs(options);
                learner.Add(new Callbacks.ProgressiveResizing([(0, first), (Math.Max(1, planned / 2), last)]));
                if (!asJson) Console.WriteLine($"progressive resizing: {first} px, then {last} px from epoch {Math.Max(1, planned / 2) + 1}");
            }
            RecipeResult Train() => fineTune is not null && options.Recipe == RecipeKind.FineTune
                ? RunPretrained(learner, fineTune, options, range, ct)
                : Recipes.Run(learner, options, ct);
            RecipeResult result;
            try
            {
                result = live ? ConsoleProgress.Run(learner, Train) : Train();
            }
            catch (OperationCanceledException) when (mpi is not null)
            {
                // The ranks stopped together (docs/design.md §11); they leave with the code of the signal that stopped the job.
                CliSupport.AgreeOnStopExitCode(code => (int)world.Max(code));
                throw;
            }
            finally
            {
                // Messages logged under the live bars (LR finder, stages, stop reasons) are printed once they are gone.
                foreach (var m in held) Console.WriteLine(m);
            }
            var trained = new TrainedModel(learner.Model, arch, trainSet.Classes, learner.Normalization!.Value, (trainSet.Channels, trainSize.Height, trainSize.Width));
            if (!root) return CliSupport.Success; // the ranks hold the same model: rank 0 evaluates it and writes the files
            string? consumption = null;
            if (parse.GetValue(output) is { } path)
            {
                if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) Onnx.OnnxExporter.Export(trained, path);
                else if (path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
                {
                    MLNet.MLNetModelFile.Save([trained], path);
                    consumption = ConsumptionCode.WriteMLNet(path, trained.Classes);
                }
                else
                {
                    trained.Save(path);
                    consumption = ConsumptionCode.Write(path, trained.Classes);
                }
            }

            double accuracy = result.Validation?.Metrics.GetValueOrDefault("accuracy", double.NaN) ?? double.NaN;
            var ttaClock = Stopwatch.StartNew();
            var ttaReport = parse.GetValue(tta) ? new TtaScorer(new ClassifierTransformer(trained)).Evaluate(validSet) : null;
            double? ttaSeconds = ttaReport is null ? null : ttaClock.Elapsed.TotalSeconds;
            double? accuracyTta = ttaReport?.TtaAccuracy;
            if (parse.GetValue(report) is { } reportPath)
            {
                new Reports.TrainingReport
                {
                    Title = $"fasttrain: {arch} on {folder}",
                    Settings = new Dictionary<string, string>
                    {
                        ["model"] = arch, ["recipe"] = parse.GetValue(recipe)!, ["data"] = folder, ["training images"] = trainSet.Count.ToString(CultureInfo.InvariantCulture),
                        ["validation images"] = validSet.Count.ToString(CultureInfo.InvariantCulture), ["batch size"] = b.ToString(CultureInfo.InvariantCulture),
                        ["learning rate"] = result.LearningRate.ToString("G3", CultureInfo.InvariantCulture), ["threads"] = t.ToString(CultureInfo.InvariantCulture),
                        ["seed"] = s.ToString(CultureInfo.InvariantCulture),
                    },
                    LrFinder = result.LrFinder,
                    Batches = learner.Recorder.Batches,
                    Epochs = learner.Recorder.Epochs,
                    Evaluation = new ClassifierTransformer(trained).Evaluate(validSet),
                    Validation = validSet,
                    Tta = ttaReport,
                    Seconds = clock.Elapsed.TotalSeconds,
                    ImagesTrained = (long)learner.Recorder.Batches.Count * b * world.Size,
                }.Save(reportPath);
                if (!asJson) Console.WriteLine($"report written to {reportPath}");
            }
            if (consumption is not null && !asJson) Console.WriteLine($"consumption code written to {consumption}");
            if (asJson)
            {
                CliSupport.WriteJson(new Dictionary<string, object?>
                {
                    ["accuracy"] = Math.Round(accuracy, 4),
                    ["loss"] = Math.Round(result.Validation?.Loss ?? double.NaN, 4),
                    ["train_seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
                    // The training batches alone (no LR finder, validation or evaluation): what a bare training loop times.
                    ["fit_seconds"] = Math.Round(learner.Recorder.Epochs.Sum(e => e.TrainSeconds), 1),
                    // Where the rest went: reading the data and building the net, the range test, each epoch's validation, TTA.
                    ["load_seconds"] = Math.Round(loadSeconds, 1),
                    ["lr_find_seconds"] = result.LrFinder is { } f ? Math.Round(f.Seconds, 1) : null,
                    ["validate_seconds"] = Math.Round(learner.Recorder.Epochs.Sum(e => e.Seconds - e.TrainSeconds), 1),
                    ["tta_seconds"] = ttaSeconds is double ts ? Math.Round(ts, 1) : null,
                    ["epochs"] = result.Epochs,
                    ["batch_size"] = b,
                    ["ranks"] = world.Size,
                    // Data-parallel: the gradients' allreduce (waits for a slower rank included) and their copies to and from its bucket.
                    ["allreduce_seconds"] = world.Size > 1 ? Math.Round(learner.Engine.AllReduceTime.TotalSeconds, 2) : null,
                    ["gradient_copy_seconds"] = world.Size > 1 ? Math.Round(learner.Engine.GradientCopyTime.TotalSeconds, 2) : null,
                    ["train_images"] = trainSet.Count,
                    ["valid_images"] = validSet.Count,
                    ["lr"] = result.LearningRate,
                    ["recipe"] = parse.GetValue(recipe),
                    ["model"] = arch,
                    ["backend"] = learner.Engine.Name,
                    ["device"] = learner.Engine.Device,
                    ["stop_reason"] = result.StopReason,
                    ["accuracy_tta"] = accuracyTta is double at ? Math.Round(at, 4) : null,
                    // The process's resident memory at the end of each epoch: flat after the first unless something leaks.
                    ["resident_mb_per_epoch"] = learner.Recorder.Epochs.Select(e => Math.Round(e.ResidentBytes / (1024.0 * 1024.0), 1)).ToArray(),
                    ["managed_heap_mb_per_epoch"] = learner.Recorder.Epochs.Select(e => Math.Round(e.ManagedHeapBytes / (1024.0 * 1024.0), 1)).ToArray(),
                    ["managed_fragmented_mb_per_epoch"] = learner.Recorder.Epochs.Select(e => Math.Round(e.ManagedFragmentedBytes / (1024.0 * 1024.0), 1)).ToArray(),
                });
            }
            else
            {
                if (live)
                {
                    var inv = CultureInfo.InvariantCulture;
                    ConsoleProgress.WriteSummary(learner,
                    [
                        ("validation accuracy", accuracy.ToString("P2", inv)), ("validation loss", (result.Validation?.Loss ?? double.NaN).ToString("F4", inv)),
                        ("epochs", result.Epochs.ToString(inv)), ("learning rate", result.LearningRate.ToString("G3", inv)),
                        ("seconds", clock.Elapsed.TotalSeconds.ToString("F1", inv)), .. accuracyTta is double a ? new[] { ("accuracy with TTA", a.ToString("P2", inv)) } : [],
                    ]);
                }
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"validation accuracy {accuracy:P2}, loss {result.Validation?.Loss:F4} after {result.Epochs} epochs in {clock.Elapsed.TotalSeconds:F1} s (lr {result.LearningRate:G3})")
                    + (accuracyTta is double withTta ? string.Create(CultureInfo.InvariantCulture, $"; with TTA {withTta:P2}") : ""));
            }
            return CliSupport.Success;
        }));
        return command;
    }

    /// <summary>The ranks mpirun started on this machine (1 outside mpirun), which share its cores.</summary>
    private static int LocalRanks() =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : 1;

    /// <summary>--batch: "auto" (null: the learner's default) or a positive number.</summary>
    private static int? ParseBatch(string text)
    {
        if (text == "auto") return null;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0) return n;
        throw new ArgumentException($"--batch must be auto or a positive number, not '{text}'.");
    }

    /// <summary>--size: "N" or "A:B"; null when absent (each source's own size).</summary>
    private static (int? Small, int? Large) ParseSize(string? text)
    {
        if (text is null) return (null, null);
        var parts = text.Split(':');
        var inv = CultureInfo.InvariantCulture;
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, NumberStyles.None, inv, out int v) && v > 0))
        {
            int a = int.Parse(parts[0], inv), b = int.Parse(parts[^1], inv);
            return (a, b);
        }
        throw new ArgumentException($"--size '{text}' must be N or A:B with positive sizes, e.g. 64 or 32:64.");
    }

    private static int PlannedSgdrEpochs(RecipeOptions o)
    {
        long total = 0, length = o.CycleLength;
        for (int c = 0; c < o.Cycles && total + length <= (o.MaxEpochs ?? long.MaxValue); c++, length *= o.CycleMult) total += length;
        return (int)Math.Max(total, o.CycleLength);
    }

    /// <summary>
    /// fastai's recipe on a pretrained body: head on precomputed activations, head with augmentation, then the whole
    /// net with lower rates for earlier groups; <c>--epochs</c> caps the epochs of all stages together.
    /// </summary>
    private static RecipeResult RunPretrained(Learner learner, DifferentialFineTune fineTune, RecipeOptions options, (double Low, double High)? lrRange, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        int left = options.MaxEpochs ?? int.MaxValue;
        var recipe = new FineTuneRecipe.Options
        {
            LearningRate = options.LearningRate, Suggestion = options.Suggestion, CycleMult = options.CycleMult, Patience = options.Patience,
        };
        // --lr LOW:HIGH spreads the rates geometrically over the layer groups, as fastai's slice(LOW, HIGH).
        if (lrRange is var (low, high) && fineTune.Groups.Count > 1) recipe.GroupRateFactor = Math.Pow(high / low, 1.0 / (fineTune.Groups.Count - 1));
        recipe.PrecomputedEpochs = Math.Min(recipe.PrecomputedEpochs, Math.Max(0, left - 1));
        left -= recipe.PrecomputedEpochs;
        recipe.AugmentedHeadCycles = Math.Min(recipe.AugmentedHeadCycles, Math.Max(0, left - 1));
        left -= recipe.AugmentedHeadCycles;
        int cycles = 0;
        for (long used = 0, length = 1; cycles < options.Cycles && used + length <= left; used += length, length *= options.CycleMult) cycles++;
        recipe.Cycles = Math.Max(1, cycles);
        int before = learner.EpochsTrained;
        // One budget over every stage: its clock runs from here, and each fit the recipe makes checks it.
        if (options.TimeBudget is TimeSpan budget) learner.Add(new Callbacks.TimeBudget(budget));
        var stages = FineTuneRecipe.Run(learner, fineTune, recipe, ct);
        var validation = learner.ValidData is null ? null : learner.Validate(cancellationToken: ct);
        return new RecipeResult(stages[^1].LearningRate, null, learner.EpochsTrained - before + recipe.PrecomputedEpochs, validation, clock.Elapsed.TotalSeconds, learner.StopReason);
    }
}
