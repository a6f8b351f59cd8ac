using TorchSharp;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Tasks;
using Workbook.Tests.Evaluation;
using Workbook.Tests.Support;
using Xunit.Abstractions;

namespace Workbook.Tests.Reliability;

/// <summary>
/// An evaluation over many batches keeps memory flat: every native tensor a batch creates is disposed with it.
/// Two measurements after batch 5 and after batch 50 of the same size: the number of live native tensors created on
/// this thread (TorchSharp's dispose-scope statistics; exact, unaffected by other tests or the allocator) must be
/// equal, and the anonymous resident memory (RssAnon of /proc/self/status, after a full garbage collection) must grow
/// by less than 10 % (it may shrink: CI saw it fall by 23 % as memory that earlier tests used was returned). RssAnon, not VmRSS: VmRSS also counts mapped files (libtorch's hundreds of MB of code), whose pages
/// the kernel drops and re-reads when another process needs memory, so it moved by over 10 % on a machine shared with
/// other builds; a leak of tensors or managed objects is anonymous memory, which without swap only grows by allocation.
/// The RSS check is the criterion; the tensor count is the robust one (RSS on a loaded 2-core machine shared by
/// parallel tests can move for reasons that are not leaks, so the tensor count is what catches a leak of even one tensor).
/// The tests run alone (their own non-parallel collection): RssAnon is process-wide, and a test running beside them
/// allocating hundreds of MB once made a 10 % change that was not theirs.
/// </summary>
[Collection(ResidentMemoryCollection.Name)]
public class MemoryTests(ITestOutputHelper output)
{
    sealed record Sample(int Batch, long LiveTensors, long RssBytes);

    static long ResidentBytes()
    {
        return Workbook.Diagnostics.ProcessStatus.Bytes(File.ReadLines("/proc/self/status"), "RssAnon")
            ?? throw new InvalidOperationException("no RssAnon in /proc/self/status");
    }

    sealed class Sampler(IReadOnlyCollection<int> afterBatches, int batchSize, List<Sample> samples) : IProgress<WorkProgress>
    {
        long _lastDone = -1;

        public void Report(WorkProgress p)
        {
            // Reported as each batch is done (one methodology): the first report of each count of prompts done.
            if (p.Done == _lastDone) return;
            _lastDone = p.Done;
            int done = (int)(p.Done / batchSize);
            if (p.Done % batchSize != 0 || !afterBatches.Contains(done)) return;
            long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            samples.Add(new Sample(done, live, ResidentBytes()));
        }
    }

    [SkippableTheory]
    [InlineData(Component.Edge, "resample")]
    [InlineData(Component.Node, "mean-corrupt")]
    public void FiftyBatchesKeepTensorsAndResidentMemoryFlat(Component component, string ablation)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "RssAnon is read from /proc, which only Linux has.");
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        const int batchSize = 4, batches = 51;
        var part = TokenizedDataset.Create(EvaluationTests.TokenDataset(11, batchSize * batches), null, false, false);
        var graph = component == Component.Edge ? ComputationGraph.Factorized(model.Config) : ComputationGraph.Residual(model.Config);
        var circuit = CircuitChoice.Of(SymbolicCircuit.FromCircuit("half", Circuit.From(graph, graph.Edges.Where(e => e.Index % 2 == 0).Select(e => new CircuitEdge(e, null)))));
        var samples = new List<Sample>();
        var request = new EvaluationRequest
        {
            Model = model, Task = EvaluationTests.TokenTask, Parts = new[] { part }, Circuit = circuit,
            Methodologies = new[] { new Methodology { Component = component, Value = AblationValue.Parse(ablation) } },
            Metrics = new[] { MetricKind.LogitDiffRecovered, MetricKind.Kl }, BatchSize = batchSize,
            Progress = new Sampler(new[] { 5, 50 }, batchSize, samples),
        };
        var rows = Evaluator.Run(request);
        Assert.Equal(2 * batchSize * batches, rows.Count);
        Assert.Equal(new[] { 5, 50 }, samples.Select(s => s.Batch));
        var (five, fifty) = (samples[0], samples[1]);
        output.WriteLine($"after batch 5: {five.LiveTensors} live tensors, RssAnon {five.RssBytes / 1e6:0.0} MB; after batch 50: {fifty.LiveTensors} live tensors, RssAnon {fifty.RssBytes / 1e6:0.0} MB");
        Assert.Equal(five.LiveTensors, fifty.LiveTensors);
        // Growth only: a leak adds memory; a drop is the allocator or the kernel returning pages that earlier tests used.
        double growth = (fifty.RssBytes - five.RssBytes) / (double)five.RssBytes;
        Assert.True(growth < 0.10, $"RssAnon grew by {100 * growth:0.0}% between batch 5 and batch 50 ({five.RssBytes} -> {fifty.RssBytes} bytes)");
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ResidentMemoryCollection
{
    public const string Name = "resident memory";
}
