using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Embedded;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>
/// Throughput mode (<see cref="CircuitStack"/>): circuits stacked along the batch give each circuit the logits of the
/// one-circuit path (<see cref="Patcher.Run"/>, the reference), on the built-in models.
/// </summary>
public class CircuitStackTests(ITestOutputHelper output)
{
    static readonly Lazy<LoadedModel> Toy = new(() => ModelLoader.LoadWithTokenizer(ToyIoi.Alias));
    static readonly Lazy<HookedTransformer> Reverse = new(() => ModelLoader.Load(KnownTasks.TracrReverse.PaperModel));

    /// <summary>A model, its graph (edge or node view) and a batch of clean/corrupt prompts.</summary>
    internal static (HookedTransformer Model, PromptPair Batch, int Prefix) Setup(string name)
    {
        switch (name)
        {
            case "toy-ioi":
            {
                var part = KnownTasks.Ioi.Tokenize(KnownTasks.Ioi.GenerateForEvaluation(Toy.Value.Tokenizer, 0, 12), Toy.Value.Tokenizer)[0];
                return (Toy.Value.Model, Evaluator.Batches(part, 6, CPU)[0].Pair, part.SharedPrefix);
            }
            case "tracr-reverse":
            {
                var part = KnownTasks.TracrReverse.Tokenize(KnownTasks.TracrReverse.GenerateForEvaluation(null, 0, 20), null)[0];
                return (Reverse.Value, Evaluator.Batches(part, 20, CPU)[0].Pair, part.SharedPrefix);
            }
            default:
            {
                var (model, batch) = FixtureModels.WithPrompts(name);
                return (model, batch, 0);
            }
        }
    }

    /// <summary>Seeded edge sets of every shape a sweep makes: small ablated sets, near-complete ones, positional ones.</summary>
    internal static IReadOnlyList<CircuitEdge[]> RandomEdgeSets(ComputationGraph graph, int seqLen, int count, int seed, bool positional)
    {
        var random = new Random(seed);
        var sets = new List<CircuitEdge[]>();
        for (int i = 0; i < count; i++)
        {
            double density = (i % 3) switch { 0 => 0.05, 1 => 0.5, _ => 0.95 };
            sets.Add(graph.Edges.Where(_ => random.NextDouble() < density)
                .Select(e => new CircuitEdge(e, positional && random.NextDouble() < 0.5 ? random.Next(seqLen) : null)).DefaultIfEmpty(new CircuitEdge(graph.Edges[0], null)).ToArray());
        }
        return sets;
    }

    [Theory]
    [InlineData("toy-ioi")]
    [InlineData("tracr-reverse")]
    [InlineData("tiny-gpt2")]
    public void PlainForwardRowsDoNotDependOnTheBatchSize(string name)
    {
        var (model, batch, _) = Setup(name);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var one = model.Forward(batch.Clean);
        var stacked = model.Forward(batch.Clean.repeat(5, 1));
        double worst = 0;
        for (int c = 0; c < 5; c++) worst = Math.Max(worst, (stacked.narrow(0, c * batch.BatchSize, batch.BatchSize) - one).abs().max().item<float>());
        output.WriteLine($"{name}: plain forward, batch {batch.BatchSize} vs {5 * batch.BatchSize}: max |difference| {worst:G3}");
        Assert.Equal(0, worst);
    }

    [Theory]
    [InlineData("toy-ioi", GraphView.Factorized, false)]
    [InlineData("toy-ioi", GraphView.Factorized, true)]
    [InlineData("toy-ioi", GraphView.Residual, false)]
    [InlineData("tracr-reverse", GraphView.Factorized, false)]
    [InlineData("tracr-reverse", GraphView.Factorized, true)]
    [InlineData("tiny-gpt2", GraphView.Factorized, false)]
    [InlineData("tiny-gpt2", GraphView.Factorized, true)]
    [InlineData("tiny-gpt2", GraphView.Residual, false)]
    public void StackedCircuitsGetTheLogitsOfTheOneCircuitPath(string name, GraphView view, bool positional)
    {
        var (model, batch, prefix) = Setup(name);
        var graph = view == GraphView.Factorized ? ComputationGraph.Factorized(model.Config, separateQkv: true) : ComputationGraph.Residual(model.Config);
        using var scope = NewDisposeScope();
        var values = PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, batch, neverPatchedPrefix: prefix);
        var sets = RandomEdgeSets(graph, batch.SeqLen, 9, seed: 7, positional);
        var masks = sets.Select(s => PatchMasks.ForEdges(graph, s, batch.SeqLen, prefix)).ToArray();
        var one = CircuitStack.Logits(model, masks, values, batch.Clean, circuitsPerForward: 1);
        var stacked = new Tensor[sets.Count];
        int forwards = CircuitStack.ForEach(model, masks, values, batch.Clean, circuitsPerForward: 4, (i, logits) => stacked[i] = logits.clone().DetachFromDisposeScope());
        // 9 circuits, 4 per forward: 3 forwards, more when engines need per-head outputs in different blocks or compute
        // different heads (random circuits leave different heads patched everywhere), never more than one per circuit.
        Assert.InRange(forwards, 3, 9);
        double worst = 0;
        for (int i = 0; i < sets.Count; i++)
        {
            Assert.Equal(one[i].shape, stacked[i].shape);
            worst = Math.Max(worst, (stacked[i] - one[i]).abs().max().item<float>());
        }
        output.WriteLine($"{name} {view} positional={positional}: stacked vs one-circuit max |difference| {worst:G3}");
        foreach (var m in masks) m.Dispose();
        foreach (var t in stacked) t.Dispose();
        Assert.Equal(0, worst);
    }

    [Fact]
    public void MemoryChunkingMatchesOneForwardForEveryCircuit()
    {
        var (model, batch, prefix) = Setup("tiny-gpt2");
        var graph = ComputationGraph.Factorized(model.Config, separateQkv: true);
        // The memory rule by hand: a quarter of the free memory over one circuit's patched-forward estimate.
        double perCircuit = ActivationMemory.EstimatePatchedBytes(model.Config, batch.BatchSize, batch.SeqLen);
        Assert.Equal(3, CircuitStack.CircuitsPerForward(model.Config, batch.BatchSize, batch.SeqLen, 10, availableBytes: (long)(perCircuit * 4 * 3.5)));
        Assert.Equal(1, CircuitStack.CircuitsPerForward(model.Config, batch.BatchSize, batch.SeqLen, 10, availableBytes: 1));
        Assert.Equal(10, CircuitStack.CircuitsPerForward(model.Config, batch.BatchSize, batch.SeqLen, 10, availableBytes: long.MaxValue / 2));
        Assert.Equal(CircuitStack.DefaultMaxCircuitsPerForward, CircuitStack.CircuitsPerForward(model.Config, batch.BatchSize, batch.SeqLen, 1000, availableBytes: long.MaxValue / 2));
        Assert.Equal(7, CircuitStack.CircuitsPerForward(model.Config, batch.BatchSize, batch.SeqLen, 10, requested: 7, availableBytes: 1));

        using var scope = NewDisposeScope();
        var values = PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, batch, neverPatchedPrefix: prefix);
        var masks = RandomEdgeSets(graph, batch.SeqLen, 10, seed: 11, positional: false).Select(s => PatchMasks.ForEdges(graph, s, batch.SeqLen, prefix)).ToArray();
        var chunked = CircuitStack.Logits(model, masks, values, batch.Clean, circuitsPerForward: 3);
        var whole = CircuitStack.Logits(model, masks, values, batch.Clean, circuitsPerForward: 10);
        for (int i = 0; i < masks.Length; i++) Assert.True(chunked[i].eq(whole[i]).all().item<bool>(), $"circuit {i}");
        foreach (var m in masks) m.Dispose();
    }

    [Fact]
    public void BadStacksAreRefusedInOneLine()
    {
        var (model, batch, _) = Setup("tiny-gpt2");
        var factorized = ComputationGraph.Factorized(model.Config, separateQkv: true);
        var heads = ComputationGraph.Factorized(model.Config, separateQkv: false);
        using var scope = NewDisposeScope();
        var values = PatchValues.Compute(model, factorized, AblationValue.Resample, PatchDirection.AblateClean, batch);
        var empty = Assert.Throws<ArgumentException>(() => CircuitStack.Logits(model, Array.Empty<PatchMasks>(), values, batch.Clean, 4));
        Assert.Equal("Give at least one circuit to evaluate.", empty.Message);
        using var a = PatchMasks.ForEdges(factorized, new[] { new CircuitEdge(factorized.Edges[0], null) }, batch.SeqLen);
        using var b = PatchMasks.ForEdges(heads, new[] { new CircuitEdge(heads.Edges[0], null) }, batch.SeqLen);
        var mixed = Assert.Throws<ArgumentException>(() => CircuitStack.Logits(model, new[] { a, b }, values, batch.Clean, 4));
        Assert.StartsWith("Circuit 1 is on the ", mixed.Message);
        Assert.Contains("stacked circuits share one graph", mixed.Message);
        var tracr = ComputationGraph.Factorized(KnownConfigs.TracrReverse, true);
        using var c = PatchMasks.ForEdges(tracr, new[] { new CircuitEdge(tracr.Edges[0], null) }, batch.SeqLen);
        Assert.Contains("does not match model", Assert.Throws<ArgumentException>(() => CircuitStack.Logits(model, new[] { c }, PatchValues.Zero, batch.Clean, 4)).Message);
        foreach (int bad in new[] { 0, CircuitStack.MaxCircuitsPerForward + 1 })
            Assert.Equal($"The number of circuits per forward pass must be within 1..{CircuitStack.MaxCircuitsPerForward}, got {bad}.",
                Assert.Throws<ArgumentException>(() => CircuitStack.Logits(model, new[] { a }, values, batch.Clean, bad)).Message);
    }
}
