using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MLNet.FastTrain.Engine;
using MLNet.FastTrain.Engine.Autograd;
using MLNet.FastTrain.Engine.Modules;
using MLNet.FastTrain.Engine.Optimizers;
using MLNet.FastTrain.Vision.Models;

namespace MLNet.FastTrain.Cli.Commands;

/// <summary>
/// <c>fasttrain bench</c>: trains the reference nets exactly as ../shared/anchors/pytorch_fmnist.py does (same
/// batch order, SGD with momentum 0.9 and weight decay 5e-4, cross-entropy) and reports throughput with the same
/// JSON keys, so the two can be compared side by side; or times one square SGEMM.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "simple or resnet (the reference nets), resnet-wide, resnet9, resnet18 or resnet18-imagenet (3-channel, at --size)",
            DefaultValueFactory = _ => "simple",
        };
        model.AcceptOnlyFromAmong("simple", "resnet", "resnet-wide", "resnet9", "resnet18", "resnet18-imagenet");
        var size = new Option<int>("--size") { Description = "image side: the reference nets take Fashion-MNIST's 28; the ImageNet layouts random 3-channel images of this size", DefaultValueFactory = _ => 28 };
        var threads = new Option<int>("--threads") { Description = "cores to use", DefaultValueFactory = _ => Environment.ProcessorCount };
        var batch = new Option<int>("--batch") { Description = "images per step", DefaultValueFactory = _ => 128 };
        var steps = new Option<int>("--steps") { Description = "timed training steps (after 5 warm-up steps)", DefaultValueFactory = _ => 60 };
        var lr = new Option<double>("--lr") { Description = "learning rate", DefaultValueFactory = _ => 0.05 };
        var gemm = new Option<int?>("--gemm") { Description = "time an N×N×N SGEMM instead of training" };
        var decode = new Option<string?>("--decode") { Description = "time decoding every image of a folder instead of training (images/s, megapixels/s)" };
        var decoder = new Option<string>("--decoder")
        {
            Description = "with --decode: auto (the loaders' choice: JPEG, WebP and GIF through Skia), managed (our own decoders for JPEG, PNG, BMP, PNM) or skia (every format through SkiaSharp)",
            DefaultValueFactory = _ => "auto",
        };
        decoder.AcceptOnlyFromAmong("auto", "managed", "skia");
        var minSide = new Option<int>("--min-side") { Description = "with --decode: decode JPEGs in the DCT domain at the smallest scale (1/2, 1/4, 1/8) whose sides stay at least this long, as the loader does for --size", DefaultValueFactory = _ => 0 };
        var loaderFolder = new Option<string?>("--loader")
        {
            Description = "time the loader over an image folder through the on-disk cache at --size instead of training: uint8 rows read in a shuffled order, and float batches of --batch with the recipes' augmentation (images/s)",
        };
        var cache = new Option<string?>("--cache") { Description = "with --loader: the cache folder (built if missing; default a temporary one)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var (backend, device, precision) = CliSupport.EngineOptions();
        var command = new Command("bench", "Measure training and inference throughput, or SGEMM speed.")
        {
            model, threads, batch, steps, lr, gemm, decode, decoder, minSide, loaderFolder, cache, json, size, backend, device, precision,
        };
        command.SetAction(r =>
        {
            int t = r.GetValue(threads), b = r.GetValue(batch), s = r.GetValue(steps);
            if (t < 1 || b < 1 || s < 1 || r.GetValue(minSide) < 0)
            {
                Console.Error.WriteLine("error: --threads, --batch and --steps must be positive, --min-side not negative.");
                return 2;
            }
            EngineSettings.Threads = t;
            foreach (var (name, folder) in new[] { ("--decode", r.GetValue(decode)), ("--loader", r.GetValue(loaderFolder)) })
            {
                if (folder is null || Directory.Exists(folder)) continue;
                Console.Error.WriteLine($"error: {name} '{folder}' is not a folder.");
                return 1;
            }
            var result = r.GetValue(decode) is { } dir ? Decode(dir, t, r.GetValue(minSide), r.GetValue(decoder)!)
                : r.GetValue(loaderFolder) is { } images ? Loader(images, r.GetValue(cache), r.GetValue(size), b)
                : r.GetValue(gemm) is int n ? Gemm(n, t)
                : Train(r.GetValue(model)!, t, b, s, r.GetValue(lr), r.GetValue(size), new Engines.EngineChoice(r.GetValue(backend)!, r.GetValue(device)!, t, Precision: r.GetValue(precision)!));
            Print(result, r.GetValue(json));
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Decodes every image of a folder (files read into memory first), once to warm up and three times timed; with
    /// minSide, JPEGs at the smallest DCT scale that keeps both sides at least that long. Megapixels are the files'.
    /// </summary>
    private static Dictionary<string, object> Decode(string folder, int threads, int minSide, string decoder)
    {
        bool skia = decoder == "skia";
        if (decoder == "managed") Vision.Decoders.ImageDecoder.Jpeg = Vision.Decoders.JpegDecoding.Managed;
        Vision.Decoders.DecodedImage DecodeOne(byte[] data, string name, int side) =>
            skia ? Vision.Decoders.SkiaDecoder.Decode(data, name, minSide: side) : Vision.Decoders.ImageDecoder.Decode(data, name, minSide: side);
        var files = Vision.Datasets.ImageFiles.ImagesUnder(folder).Select(File.ReadAllBytes).ToArray();
        if (files.Length == 0) return new() { ["error"] = $"no images in {folder}" };
        long pixels = 0, decodedPixels = 0;
        void All(bool count) => Parallel.For(0, files.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            var image = DecodeOne(files[i], $"#{i}", minSide);
            if (!count) return;
            var full = minSide > 0 ? DecodeOne(files[i], $"#{i}", 0) : image;
            Interlocked.Add(ref pixels, (long)full.Width * full.Height);
            Interlocked.Add(ref decodedPixels, (long)image.Width * image.Height);
        });
        All(true);
        const int Rounds = 3;
        var clock = Stopwatch.StartNew();
        for (int k = 0; k < Rounds; k++) All(false);
        double seconds = clock.Elapsed.TotalSeconds / Rounds;
        return new()
        {
            ["engine"] = Engine(), ["files"] = files.Length, ["threads"] = threads, ["megabytes"] = Math.Round(files.Sum(f => f.Length) / 1e6, 2),
            ["images_per_s"] = Math.Round(files.Length / seconds, 1), ["megapixels_per_s"] = Math.Round(pixels / seconds / 1e6, 1),
            ["min_side"] = minSide, ["decoded_megapixels"] = Math.Round(decodedPixels / 1e6, 2), ["decoder"] = decoder,
        };
    }

    /// <summary>
    /// The loader over a folder through the on-disk cache at <paramref name="size"/> px: the cache built or reused,
    /// then an epoch's rows read in a shuffled order into a batch buffer (uint8, as an on-device augmentation would
    /// take them), then float batches with the recipes' augmentation, normalised, as the managed engine trains on them.
    /// </summary>
    private static Dictionary<string, object> Loader(string folder, string? cacheFolder, int size, int batch)
    {
        string cache = cacheFolder ?? Directory.CreateTempSubdirectory("fasttrain-bench-cache-").FullName;
        try
        {
            var clock = Stopwatch.StartNew();
            var (data, report) = Vision.Datasets.ImageFiles.LoadAll(folder, new Vision.Datasets.ImageFiles.Options { Size = size, CacheFolder = cache, SkipInvalid = true });
            double loadSeconds = clock.Elapsed.TotalSeconds;
            var order = Vision.Datasets.Shuffling.Order(data.Count, shuffle: true, seed: 1, epoch: 0);
            var rows = new byte[batch * data.ImageSize];
            clock.Restart();
            for (int i = 0; i < order.Length; i++) data.Pixels(order[i], rows.AsSpan(i % batch * data.ImageSize, data.ImageSize));
            double rowSeconds = clock.Elapsed.TotalSeconds;
            var loader = new Vision.Datasets.DataLoader(data, Math.Min(batch, data.Count), shuffle: true, seed: 1, dropLast: true)
            {
                BatchTransform = Vision.Transforms.Augmentations.BySize(),
            };
            int loaded = 0;
            clock.Restart();
            foreach (var b in loader.Epoch(0)) loaded += b.Labels.Length;
            double floatSeconds = clock.Elapsed.TotalSeconds;
            return new()
            {
                ["engine"] = Engine(), ["files"] = data.Count, ["size"] = size, ["batch"] = loader.BatchSize, ["threads"] = EngineSettings.Threads,
                ["cache_seconds"] = Math.Round(loadSeconds, 2), ["cache_reused"] = report.Cache!.Reused, ["cache_decoded"] = report.Cache.Decoded,
                ["cache_megabytes"] = Math.Round(new FileInfo(report.Cache.File).Length / 1e6, 1),
                ["uint8_images_per_s"] = Math.Round(data.Count / rowSeconds, 1),
                ["loader_images_per_s"] = Math.Round(loaded / floatSeconds, 1),
            };
        }
        finally
        {
            if (cacheFolder is null) Directory.Delete(cache, recursive: true);
        }
    }

    private static Dictionary<string, object> Gemm(int n, int threads)
    {
        var a = Tensor.Normal([n, n], generator: new Generator(1));
        var b = Tensor.Normal([n, n], generator: new Generator(2));
        // Each product runs in a TensorScope, as training steps do, so the result's memory is reused.
        for (int i = 0; i < 3; i++) { using var warm = TensorScope.Begin(); Functional.MatMul(a, b); }
        int reps = Math.Max(3, (int)(2e10 / (2.0 * n * n * n)));
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) { using var scope = TensorScope.Begin(); Functional.MatMul(a, b); }
        double seconds = clock.Elapsed.TotalSeconds;
        return new() { ["engine"] = Engine(), ["gemm"] = n, ["threads"] = threads, ["gflops"] = Math.Round(2.0 * n * n * n * reps / seconds / 1e9, 1) };
    }

    private static Dictionary<string, object> Train(string modelName, int threads, int batch, int steps, double lr, int size, Engines.EngineChoice choice)
    {
        var data = BenchData.Load();
        var g = new Generator(0);
        // The ImageNet layouts train on colour images of any size: random pixels, which time the same as real ones.
        bool colour = modelName is "resnet18" or "resnet18-imagenet";
        if (!colour && size != 28) throw new ArgumentException($"--size: {modelName} trains on Fashion-MNIST's 28 × 28 images; --size applies to resnet18 and resnet18-imagenet.");
        Module net = Models.TrainedModel.CreateNetwork(modelName, colour ? 3 : 1, 10, g);
        var opt = new Sgd(net.Parameters(), lr, momentum: 0.9, weightDecay: 5e-4);
        int n = data.TrainLabels.Length;
        var xb = colour ? Tensor.Normal([batch, 3, size, size], 0, 1, new Generator(3)) : Tensor.Zeros(batch, 1, 28, 28);
        var yb = new int[batch];
        var factory = choice.Resolve(out _, modelName);
        // Another engine runs the step as the learner does: its scope, forward and loss, backward, optimizer step.
        var engine = factory?.Invoke(net, opt);
        var stepBatch = new Vision.Datasets.Batch(xb, yb);

        void Step(int i)
        {
            int j = (int)((long)i * batch % (n - batch));
            int image = xb.Length / batch;
            if (!colour) data.Train.AsSpan().Slice(j * image, batch * image).CopyTo(xb.AsSpan());
            Array.Copy(data.TrainLabels, j, yb, 0, batch);
            if (engine is not null)
            {
                using var step = engine.BeginStep();
                engine.Forward(stepBatch);
                engine.Backward();
                engine.Step();
                return;
            }
            // The loop takes nothing out of a step, so the step's tensor objects can be reused by the next one.
            using var scope = TensorScope.Begin(reuseTensorObjects: true);
            opt.ZeroGrad(setToNone: false);
            Functional.CrossEntropy(net.Forward(xb), yb).Backward();
            opt.Step();
        }

        Tensor Infer(Tensor images) => engine is null ? net.Forward(images) : engine.Logits(images);

        net.Train();
        engine?.Train(true);
        for (int i = 0; i < 5; i++) Step(i);
        OperationCounters.Reset();
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step(i);
        double trainSeconds = clock.Elapsed.TotalSeconds;
        double cpuPerStep = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / steps;
        long allocatedPerStep = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / steps;
        double trainFlops = 3.0 * 2.0 * OperationCounters.MultiplyAdds;

        net.Eval();
        engine?.Train(false);
        int inferred = 0;
        clock.Restart();
        using (GradRecorder.NoGrad())
        {
            if (colour)
            {
                for (int r = 0; r < 4; r++)
                {
                    using var scope = TensorScope.Begin();
                    Infer(xb);
                    inferred += batch;
                }
            }
            else
            {
                for (int j = 0; j + 500 <= Math.Min(5000, data.Test.Size(0)); j += 500)
                {
                    using var scope = TensorScope.Begin();
                    Infer(data.Test.Narrow(j, 500));
                    inferred += 500;
                }
            }
        }
        double inferSeconds = clock.Elapsed.TotalSeconds;

        // What the loader delivers with fastai's augmentations on (shuffling, augmenting, normalising, prefetching),
        // to set against what a training step consumes.
        var loader = new Vision.Datasets.DataLoader(data.Dataset, batch, shuffle: true, seed: 1, dropLast: true) { BatchTransform = Vision.Transforms.Augmentations.Default() };
        int loaded = 0;
        clock.Restart();
        foreach (var b in loader.Epoch(0))
        {
            loaded += b.Labels.Length;
            if (loaded >= steps * batch) break;
        }
        double loaderSeconds = clock.Elapsed.TotalSeconds;

        return new()
        {
            ["engine"] = engine is null ? Engine() : $"{Engine()}+{engine.Name}",
            ["backend"] = engine?.Name ?? "managed",
            ["device"] = engine?.Device ?? "cpu",
            ["model"] = modelName,
            ["threads"] = threads,
            ["batch"] = batch,
            ["size"] = colour ? size : 28,
            ["train_images_per_s"] = Math.Round(steps * batch / trainSeconds, 1),
            ["infer_images_per_s"] = Math.Round(inferred / inferSeconds, 1),
            ["loader_images_per_s"] = Math.Round(loaded / loaderSeconds, 1),
            ["gflops"] = Math.Round(trainFlops / trainSeconds / 1e9, 1),
            ["allocated_bytes_per_step"] = allocatedPerStep,
            // CPU time is less disturbed than wall time by other tenants of a shared machine: use it to compare builds.
            ["cpu_seconds_per_step"] = Math.Round(cpuPerStep, 4),
            ["data"] = data.Source,
        };
    }

    private static string Engine() => "mlnet-fasttrain-" + typeof(Tensor).Assembly.GetName().Version!.ToString(3);

    private static void Print(Dictionary<string, object> result, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(result));
            return;
        }
        foreach (var (key, value) in result)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{key,-26}{value}"));
    }
}
