using BenchmarkDotNet.Attributes;
using TorchSharp;
using Workbook.Diagnostics;

namespace Workbook.Benchmarks;

/// <summary>
/// Edge attribution patching over all 32,491 edges of a GPT-2-small-shaped model (random weights), 100 prompts × 16
/// tokens (issue 9), against one forward plus backward pass of the same batch. <see cref="Attribution"/> includes the
/// corrupt forward that records the resample values; <see cref="AttributionOnly"/> takes them as given.
/// </summary>
public class AttributionBenchmarks
{
    AttributionWorkload _workload = null!;
    Workbook.Patching.PatchValues _values = null!;

    [Params(100)] public int Batch;
    public const int Seq = 16;

    [GlobalSetup]
    public void Setup()
    {
        Workbook.Model.NativeHeap.KeepFreedBlocks(); // as the CLI and notebooks run (each benchmark is its own process)
        torch.set_num_threads(Environment.ProcessorCount);
        _workload = AttributionWorkload.Create(Batch, Seq);
        _values = Workbook.Patching.PatchValues.Compute(_workload.Model, _workload.Graph, Workbook.Patching.AblationValue.Resample,
            Workbook.Patching.PatchDirection.AblateClean, new Workbook.Patching.PromptPair(_workload.Clean, _workload.Corrupt));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _values.Values?.Dispose();
        _workload.Dispose();
    }

    [Benchmark(Baseline = true)]
    public double ForwardBackward() => _workload.ForwardBackward();

    [Benchmark]
    public int Attribution() => _workload.Attribution().Total.Length;

    [Benchmark]
    public int AttributionOnly()
    {
        using var scope = torch.NewDisposeScope();
        return Workbook.Patching.EdgeAttribution.Compute(_workload.Model, _workload.Graph, _values, _workload.Clean, _workload.Loss).Total.Length;
    }
}
