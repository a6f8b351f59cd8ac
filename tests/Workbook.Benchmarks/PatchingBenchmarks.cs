using BenchmarkDotNet.Attributes;
using TorchSharp;
using Workbook.Diagnostics;

namespace Workbook.Benchmarks;

/// <summary>
/// Patched forward vs plain forward on a GPT-2-small-shaped model, batch 50 × 16 tokens, all 32,491 edges
/// maskable, the complement of a 771-edge circuit patched with resample values (issue 4's benchmark). The workload
/// is <see cref="PatchingWorkload"/>, which <c>workbook bench patching</c> times on any device.
/// </summary>
[MemoryDiagnoser]
public class PatchingBenchmarks
{
    PatchingWorkload _workload = null!;

    [Params(50)] public int Batch;
    public const int Seq = 16;

    /// <summary>The kept circuit: IOI's 771-edge circuit (structured, like real circuits) or 771 random edges.</summary>
    [Params(PatchingWorkload.CircuitKind.Ioi, PatchingWorkload.CircuitKind.Random)] public PatchingWorkload.CircuitKind Circuit;

    [GlobalSetup]
    public void Setup()
    {
        Workbook.Model.NativeHeap.KeepFreedBlocks(); // as the CLI and notebooks run (each benchmark is its own process)
        torch.set_num_threads(Environment.ProcessorCount);
        _workload = PatchingWorkload.Create(Batch, Seq, kind: Circuit);
    }

    [GlobalCleanup]
    public void Cleanup() => _workload.Dispose();

    [Benchmark(Baseline = true)]
    public void PlainForward()
    {
        using var scope = torch.NewDisposeScope();
        _workload.PlainForward();
    }

    [Benchmark]
    public void PatchedForward()
    {
        using var scope = torch.NewDisposeScope();
        _workload.PatchedForward();
    }

    [Benchmark]
    public void PatchedForwardTokenSpecific()
    {
        using var scope = torch.NewDisposeScope();
        _workload.PatchedForwardTokenSpecific();
    }
}
