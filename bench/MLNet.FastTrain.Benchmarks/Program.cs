// Kernel benchmarks. Run all:   dotnet run -c Release --project bench/MLNet.FastTrain.Benchmarks -- --filter '*'
// or one class:                 ... -- --filter '*Gemm*'
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
