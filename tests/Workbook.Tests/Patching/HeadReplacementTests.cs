using TorchSharp;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>
/// Heads patched on every out-edge at every position are not computed: their patch value takes their place
/// (<see cref="IForwardInterceptor.ReplacedHeads"/>). Checked against the same engine computing every head, against the
/// slow factorized forward, and by poisoning the replaced heads' weights with NaN (a computed head would spread it).
/// </summary>
public class HeadReplacementTests(ITestOutputHelper output)
{
    /// <summary>
    /// Patched edges (mask 1) in which every out-edge of the heads in <paramref name="replaced"/> is patched at every
    /// position and every other head keeps one out-edge unpatched somewhere; the other edges are patched at random,
    /// at one position or all.
    /// </summary>
    static CircuitEdge[] PatchedEdges(ComputationGraph g, ISet<int> replaced, int seqLen, int seed, bool positional)
    {
        var random = new Random(seed);
        var kept = new HashSet<int>(); // heads that already keep an out-edge
        var edges = new List<CircuitEdge>();
        foreach (var e in g.Edges)
        {
            int s = e.Source.Index;
            if (replaced.Contains(s)) { edges.Add(new CircuitEdge(e, null)); continue; }
            bool head = e.Source.Kind == NodeKind.Head;
            if (head && kept.Add(s))
            {
                // This out-edge stays unpatched at position 0 at least: the head is read somewhere.
                if (positional && seqLen > 1) edges.Add(new CircuitEdge(e, 1 + random.Next(seqLen - 1)));
                continue;
            }
            if (random.NextDouble() < 0.5) continue;
            edges.Add(new CircuitEdge(e, positional && random.NextDouble() < 0.5 ? random.Next(seqLen) : null));
        }
        return edges.ToArray();
    }

    /// <summary>Seeded heads to replace: every head of block 0 (a block with nothing to compute) and about half of the rest.</summary>
    static HashSet<int> ReplacedSources(ComputationGraph g, int seed)
    {
        var random = new Random(seed);
        return g.Sources.Where(s => s.Kind == NodeKind.Head && (s.Block == 0 || random.NextDouble() < 0.5)).Select(s => s.Index).ToHashSet();
    }

    static ComputationGraph Graph(HookedTransformer m, GraphView view) =>
        view == GraphView.Factorized ? ComputationGraph.Factorized(m.Config) : ComputationGraph.Residual(m.Config);

    /// <summary>The engine's pass with every head computed: the same masks and values, replacement off.</summary>
    static Tensor EveryHeadComputed(HookedTransformer m, PatchMasks masks, PatchValues values, Tensor input)
    {
        using var scope = NewDisposeScope();
        return m.Forward(input, null, Patcher.Interceptor(m, masks, values, replaceHeads: false)).MoveToOuterDisposeScope();
    }

    public static IEnumerable<object[]> Cases() =>
        from model in new[] { "tiny-gpt2", "tiny-neox" }
        from view in new[] { GraphView.Factorized, GraphView.Residual }
        from positional in new[] { false, true }
        select new object[] { model, view, positional };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReplacingHeadsGivesTheLogitsOfComputingThem(string model, GraphView view, bool positional)
    {
        var (m, batch) = FixtureModels.WithPrompts(model);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = Graph(m, view);
        var replaced = ReplacedSources(g, seed: 3);
        using var masks = PatchMasks.ForEdges(g, PatchedEdges(g, replaced, batch.SeqLen, seed: 5, positional), batch.SeqLen);
        var engine = Patcher.Interceptor(m, masks, PatchValues.Zero, replaceHeads: true);
        // The engine finds exactly the heads built to be replaced.
        var found = Enumerable.Range(0, m.Config.NLayers).SelectMany(l => Computed(engine, l) is { } c
            ? Enumerable.Range(0, m.Config.NHeads).Where(h => !c.Contains(h)).Select(h => g.Sources.Single(s => s.Kind == NodeKind.Head && s.Block == l && s.Head == h).Index)
            : Enumerable.Empty<int>()).ToHashSet();
        Assert.Equal(replaced.OrderBy(x => x), found.OrderBy(x => x));
        foreach (var value in new[] { AblationValue.Resample, AblationValue.Zero, AblationValue.Mean(MeanOver.Batch) })
        {
            var values = PatchValues.Compute(m, g, value, PatchDirection.AblateClean, batch);
            var fast = Patcher.Run(m, masks, values, batch.Clean);
            var every = EveryHeadComputed(m, masks, values, batch.Clean);
            double diff = TensorAssert.MaxAbsDiff(every, fast);
            output.WriteLine($"{model} {view} positional={positional} {value.Label}: max |replaced − computed| {diff:G3}");
            TensorAssert.Close(every, fast, 1e-5, value.Label);
            if (view == GraphView.Factorized)
                TensorAssert.Close(SlowFactorizedForward.Run(m, g, batch.Clean, e => masks.EdgeView(g.Edges[e]), values.Values), fast, 1e-4, value.Label);
        }
    }

    static IReadOnlyList<long>? Computed(IForwardInterceptor engine, int layer) => ((IReplacesHeads)engine).ComputedHeads(layer);

    [Theory]
    [InlineData("tiny-gpt2", GraphView.Factorized)]
    [InlineData("tiny-gpt2", GraphView.Residual)]
    [InlineData("tiny-neox", GraphView.Factorized)]
    [InlineData("tiny-neox", GraphView.Residual)]
    public void ReplacedHeadsAreNeverComputed(string model, GraphView view)
    {
        // A private copy of the model: its replaced heads' weights are poisoned below.
        var m = ModelLoader.Load(TestFiles.Fixture(model));
        var (_, batch) = FixtureModels.WithPrompts(model);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = Graph(m, view);
        var replaced = ReplacedSources(g, seed: 8);
        using var masks = PatchMasks.ForEdges(g, PatchedEdges(g, replaced, batch.SeqLen, seed: 9, positional: true), batch.SeqLen);
        var values = PatchValues.Compute(m, g, AblationValue.Resample, PatchDirection.AblateClean, batch);
        var before = Patcher.Run(m, masks, values, batch.Clean);
        foreach (var s in replaced.Select(i => g.Sources[i]))
        {
            var attn = m.blocks[s.Block].attn;
            foreach (var w in new[] { attn.W_Q, attn.W_K, attn.W_V, attn.W_O }) w[s.Head].fill_(float.NaN);
        }
        var after = Patcher.Run(m, masks, values, batch.Clean);
        Assert.False(after.isnan().any().item<bool>(), "a replaced head's NaN weights reached the logits: it was computed");
        Assert.True(before.eq(after).all().item<bool>(), "the logits changed when the replaced heads' weights did");
        // Computing every head does spread the poison (the check above can fail).
        Assert.True(EveryHeadComputed(m, masks, values, batch.Clean).isnan().any().item<bool>());
    }

    [Fact]
    public void HooksSeeEveryHeadAndTheSameLogits()
    {
        var (m, batch) = FixtureModels.WithPrompts("tiny-gpt2");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = Graph(m, GraphView.Factorized);
        using var masks = PatchMasks.ForEdges(g, PatchedEdges(g, ReplacedSources(g, seed: 1), batch.SeqLen, seed: 2, positional: false), batch.SeqLen);
        var values = PatchValues.Compute(m, g, AblationValue.Resample, PatchDirection.AblateClean, batch);
        var replacedRun = Patcher.Run(m, masks, values, batch.Clean);
        long heads = 0;
        var hooks = new HookSet().Add(HookNames.Block(0)[HookNames.Z], (t, _) => { heads = t.shape[2]; return null; });
        var hooked = Patcher.Run(m, masks, values, batch.Clean, hooks);
        Assert.Equal(m.Config.NHeads, heads);
        TensorAssert.Close(replacedRun, hooked, 1e-5);
    }

    [Fact]
    public void AReplacementUnderHooksIsRefusedInOneLine()
    {
        var (m, batch) = FixtureModels.WithPrompts("tiny-gpt2");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var hooks = new HookSet().Add(HookNames.Block(0)[HookNames.Z], (_, _) => null);
        var e = Assert.Throws<InvalidOperationException>(() => m.Forward(batch.Clean, hooks, new ReplaceEveryHead()));
        Assert.Contains("hooks or a cache observe this pass", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>Replaces every head with zero (an engine's answer that hooks would miss).</summary>
    sealed class ReplaceEveryHead : IForwardInterceptor
    {
        public HeadReplacement? ReplacedHeads(int layer, Tensor residPre) =>
            new(Array.Empty<long>(), empty(0, dtype: ScalarType.Int64), zeros(1, 1, residPre.shape[2]));
    }

    [Theory]
    [InlineData(GraphView.Factorized)]
    [InlineData(GraphView.Residual)]
    public void CircuitsThatReplaceTheSameHeadsStackAndMatchTheOneCircuitPath(GraphView view)
    {
        var (m, batch) = FixtureModels.WithPrompts("tiny-gpt2");
        using var scope = NewDisposeScope();
        var g = Graph(m, view);
        var replaced = ReplacedSources(g, seed: 4);
        var values = PatchValues.Compute(m, g, AblationValue.Resample, PatchDirection.AblateClean, batch);
        var masks = Enumerable.Range(0, 6).Select(i => PatchMasks.ForEdges(g, PatchedEdges(g, replaced, batch.SeqLen, seed: 20 + i, positional: i % 2 == 0), batch.SeqLen)).ToArray();
        var one = CircuitStack.Logits(m, masks, values, batch.Clean, circuitsPerForward: 1);
        var stacked = new Tensor[masks.Length];
        int forwards = CircuitStack.ForEach(m, masks, values, batch.Clean, circuitsPerForward: 3, (i, logits) => stacked[i] = logits.clone().DetachFromDisposeScope());
        // Same replaced heads; per-head outputs needed in the same blocks unless the random circuits differ there.
        Assert.InRange(forwards, 2, 4);
        for (int i = 0; i < masks.Length; i++) Assert.True(one[i].eq(stacked[i]).all().item<bool>(), $"circuit {i}");
        foreach (var t in stacked) t.Dispose();
        foreach (var mk in masks) mk.Dispose();
    }
}
