using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using Workbook.Benchmarks;

// `dotnet run -c Release --project tests/Workbook.Benchmarks -- --filter '*Patching*'` runs BenchmarkDotNet.
// `-- quick` times each benchmark a few times with a stopwatch (a fast sanity check, not the reported figure).
// `-- memory` reports peak resident memory of a plain and a patched forward (native memory, which
// BenchmarkDotNet's MemoryDiagnoser does not see).
if (args.Length > 0 && args[0] == "quick")
{
    var b = new PatchingBenchmarks { Batch = args.Length > 1 ? int.Parse(args[1]) : 50 };
    b.Setup();
    foreach (var (name, run) in new (string, Action)[] { ("plain", b.PlainForward), ("patched", b.PatchedForward), ("patched token-specific", b.PatchedForwardTokenSpecific) })
        QuickTiming.Print(name, run);
    return;
}
// `-- --memory-pythia [--dtype float32,bfloat16]` writes a Pythia-2.8B-shaped float16 checkpoint (5.6 GB, deleted
// afterwards) and reports the peak memory of loading it in a fresh process (see PythiaMemory).
if (args.Length > 0 && args[0] == "--memory-pythia")
{
    Environment.ExitCode = PythiaMemory.Run(args);
    return;
}
// `-- memory-eap [batch]` reports peak resident memory of edge attribution patching over every edge (GPT-2 small shape).
if (args.Length > 0 && args[0] == "memory-eap")
{
    AttributionMemory.Run(args.Skip(1).ToArray());
    return;
}
// `-- quick-eap [batch]`: stopwatch medians of forward+backward and edge attribution patching (a sanity check).
if (args.Length > 0 && args[0] == "quick-eap")
{
    AttributionMemory.Quick(args.Skip(1).ToArray());
    return;
}
// `-- figure3-part`: one IOI part of Figure 3 timed by pass kind (plain, each methodology, whole part) on the GPT-2 stand-in.
if (args.Length > 0 && args[0] == "figure3-part")
{
    Figure3PassCosts.Run();
    return;
}
if (args.Length > 0 && args[0] == "memory")
{
    MemoryProbe.Run(args.Skip(1).ToArray());
    return;
}
var config = DefaultConfig.Instance.AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(10).WithLaunchCount(1));
BenchmarkSwitcher.FromAssembly(typeof(PatchingBenchmarks).Assembly).Run(args, config);
