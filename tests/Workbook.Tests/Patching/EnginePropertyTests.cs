using TorchSharp;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>Properties of the patching engine on random circuits, checked against the slow factorized forward.</summary>
public class EnginePropertyTests
{
    static (HookedTransformer Model, PromptPair Batch) Setup(string model) => FixtureModels.WithPrompts(model);

    static Circuit RandomCircuit(ComputationGraph g, int seed, int seqLen, double density, bool positional)
    {
        var rng = new Random(seed);
        var edges = new List<CircuitEdge>();
        foreach (var e in g.Edges)
        {
            if (rng.NextDouble() >= density) continue;
            if (!positional || rng.Next(3) == 0) edges.Add(new CircuitEdge(e, null));
            else edges.Add(new CircuitEdge(e, rng.Next(seqLen)));
        }
        return Circuit.From(g, edges);
    }

    /// <summary>The mask a methodology implies for each edge, [B, T], computed by definition (slow path).</summary>
    static Func<int, Tensor?> DefinitionMask(Circuit c, Methodology meth, int seqLen, long batch, int prefix)
    {
        return edgeIndex =>
        {
            var edge = c.Graph.Edges[edgeIndex];
            var m = new float[seqLen];
            for (int t = prefix; t < seqLen; t++)
            {
                bool inCircuit = meth.Positions == TokenPositions.All ? c.PositionsOf(edge) is not { Count: 0 } : c.Contains(edge, t);
                m[t] = (meth.Ablate == AblatedSet.Complement) != inCircuit ? 1 : 0;
            }
            return tensor(m).unsqueeze(0).expand(batch, seqLen);
        };
    }

    public static IEnumerable<object[]> Cases()
    {
        // Densities exercise both decompositions of the fast path: sparse circuits (complement masks mostly 1,
        // circuit masks mostly 0), dense ones, and the even mix in between.
        foreach (var model in new[] { "tiny-gpt2", "tiny-neox" })
            for (int seed = 0; seed < 3; seed++)
                yield return new object[] { model, seed, new[] { 0.03, 0.3, 0.97 }[seed] };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FastEngineEqualsSlowReferenceOnRandomCircuits(string model, int seed, double density)
    {
        var (m, batch) = Setup(model);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = ComputationGraph.Factorized(m.Config);
        var rng = new Random(seed);
        var values = new[] { AblationValue.Resample, AblationValue.Zero, AblationValue.Mean(MeanOver.Batch) };
        foreach (var positions in new[] { TokenPositions.Specific, TokenPositions.All })
        foreach (var set in new[] { AblatedSet.Complement, AblatedSet.Circuit })
        {
            var circuit = RandomCircuit(g, seed * 100 + rng.Next(1000), batch.SeqLen, density, positional: positions == TokenPositions.Specific);
            var meth = new Methodology { Value = values[rng.Next(values.Length)], Positions = positions, Ablate = set };
            int prefix = rng.Next(3);
            var fast = CircuitPatching.PatchedLogits(m, circuit, meth with { NeverPatchedPrefix = prefix }, batch);
            var patch = PatchValues.Compute(m, g, meth.Value, meth.Direction, batch).Values;
            var slow = SlowFactorizedForward.Run(m, g, batch.Clean, DefinitionMask(circuit, meth, batch.SeqLen, batch.BatchSize, prefix), patch);
            TensorAssert.Close(slow, fast, 1e-4, $"{meth.Label} prefix {prefix}");
        }
    }

    [Theory]
    [InlineData("tiny-neox", 0.05)]
    [InlineData("tiny-gpt2", 0.5)]
    public void HeadGranularityMatchesSlowReference(string model, double density)
    {
        // One destination per head (Q, K and V read the same input), as in the Sports Players graph.
        var (m, batch) = Setup(model);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = ComputationGraph.Factorized(m.Config, separateQkv: false);
        foreach (var positions in new[] { TokenPositions.Specific, TokenPositions.All })
        {
            var circuit = RandomCircuit(g, 11, batch.SeqLen, density, positional: positions == TokenPositions.Specific);
            var meth = new Methodology { Granularity = Granularity.Heads, Positions = positions, NeverPatchedPrefix = 2 };
            var fast = CircuitPatching.PatchedLogits(m, circuit, meth, batch);
            var patch = PatchValues.Compute(m, g, meth.Value, meth.Direction, batch).Values;
            var slow = SlowFactorizedForward.Run(m, g, batch.Clean, DefinitionMask(circuit, meth, batch.SeqLen, batch.BatchSize, 2), patch);
            TensorAssert.Close(slow, fast, 1e-4, meth.Label);
        }
    }

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    public void ContinuousPerPromptMasksMatchSlowReference(string model)
    {
        var (m, batch) = Setup(model);
        using var scope = NewDisposeScope();
        var g = ComputationGraph.Factorized(m.Config);
        using var masks = PatchMasks.Filled(g, 0, seqLen: batch.SeqLen, batch: (int)batch.BatchSize);
        var gen = new Generator(7);
        using (no_grad())
            foreach (var mask in masks.Masks) mask!.copy_(rand(mask.shape, generator: gen));
        var values = PatchValues.Compute(m, g, AblationValue.Resample, PatchDirection.AblateClean, batch);
        using var _ = no_grad();
        var fast = Patcher.Run(m, masks, values, batch.Clean);
        var slow = SlowFactorizedForward.Run(m, g, batch.Clean, e => masks.EdgeView(g.Edges[e])!, values.Values);
        TensorAssert.Close(slow, fast, 1e-4);
    }

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    public void EmptyPatchReproducesTheCleanRun(string model)
    {
        var (m, batch) = Setup(model);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = ComputationGraph.Factorized(m.Config);
        var clean = m.Forward(batch.Clean);
        var everything = Circuit.All(g);
        // Keeping the whole model as the circuit patches nothing, whatever the ablation value.
        foreach (var value in new[] { AblationValue.Resample, AblationValue.Zero })
            TensorAssert.Close(clean, CircuitPatching.PatchedLogits(m, everything, new Methodology { Value = value }, batch), 1e-5);
        // Zero masks at every site (the engine runs, every mask entry is 0).
        using var zeros = PatchMasks.Filled(g, 0);
        TensorAssert.Close(clean, Patcher.Run(m, zeros, PatchValues.Zero, batch.Clean), 1e-5);
    }

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    public void ResamplingEveryEdgeReproducesTheCorruptRun(string model)
    {
        var (m, batch) = Setup(model);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = ComputationGraph.Factorized(m.Config);
        var corrupt = m.Forward(batch.Corrupt);
        var meth = new Methodology { Value = AblationValue.Resample, Positions = TokenPositions.All };
        TensorAssert.Close(corrupt, CircuitPatching.PatchedLogits(m, Circuit.Empty(g), meth, batch), 1e-4);
        // Per-position masks (position-major path) too.
        TensorAssert.Close(corrupt, CircuitPatching.PatchedLogits(m, Circuit.Empty(g), meth with { Positions = TokenPositions.Specific, NeverPatchedPrefix = 0 }, batch), 1e-4);
        // And the node view: ablating every residual edge gives the corrupt run too.
        var r = ComputationGraph.Residual(m.Config);
        TensorAssert.Close(corrupt, CircuitPatching.PatchedLogits(m, Circuit.Empty(r), meth with { Component = Component.Node }, batch), 1e-4);
    }

    [Theory]
    [InlineData("tiny-gpt2", 0)]
    [InlineData("tiny-gpt2", 1)]
    [InlineData("tiny-neox", 2)]
    public void NodeAblationEqualsAblatingAllOutEdges(string model, int seed)
    {
        var (m, batch) = Setup(model);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var rng = new Random(seed);
        var f = ComputationGraph.Factorized(m.Config);
        var r = ComputationGraph.Residual(m.Config);
        var heads = r.Sources.Where(s => s.Kind == NodeKind.Head && rng.Next(3) == 0).ToList();
        int? position = seed == 1 ? 4 : null;
        // Residual view: patch each chosen head's single out-edge (at one position or all).
        var nodeEdges = heads.Select(h => new CircuitEdge(r.EdgesFrom(h).Single(), position));
        // Factorized view: patch every out-edge of the same heads.
        var edgeEdges = heads.SelectMany(h => f.EdgesFrom(f.Source(h.Name))).Select(e => new CircuitEdge(e, position));
        foreach (var value in new[] { AblationValue.Resample, AblationValue.Zero })
        {
            using var nodeMasks = PatchMasks.ForEdges(r, nodeEdges, batch.SeqLen);
            using var edgeMasks = PatchMasks.ForEdges(f, edgeEdges, batch.SeqLen);
            var nodeRun = Patcher.Run(m, nodeMasks, PatchValues.Compute(m, r, value, PatchDirection.AblateClean, batch), batch.Clean);
            var edgeRun = Patcher.Run(m, edgeMasks, PatchValues.Compute(m, f, value, PatchDirection.AblateClean, batch), batch.Clean);
            TensorAssert.Close(edgeRun, nodeRun, 1e-4, value.ToString());
            Assert.True(heads.Count == 0 || TensorAssert.MaxAbsDiff(nodeRun, m.Forward(batch.Clean)) > 1e-3, "the ablation must change something");
        }
    }

    [Fact]
    public void MaskGradientsMatchFiniteDifferences()
    {
        var (m, batch) = Setup("tiny-gpt2");
        using var scope = NewDisposeScope();
        var g = ComputationGraph.Factorized(m.Config);
        using var masks = PatchMasks.Filled(g, 0.3, requiresGrad: true);
        var values = PatchValues.Compute(m, g, AblationValue.Resample, PatchDirection.AblateClean, batch);
        Tensor Loss() => Patcher.Run(m, masks, values, batch.Clean)[.., -1, ..].logsumexp(-1).sum();
        var loss = Loss();
        loss.backward();
        var rng = new Random(1);
        for (int i = 0; i < 6; i++)
        {
            var edge = g.Edges[rng.Next(g.EdgeCount)];
            var (site, row) = masks.SlotOf(edge.Destination);
            int col = edge.Source.Index - masks.Sites[site].FirstSource;
            double analytic = masks.Masks[site]!.grad![0, 0, row, col].item<float>();
            double FiniteDiff(double h)
            {
                using var _ = no_grad();
                var view = masks.EdgeView(edge)!;
                view.add_(h);
                double plus = Loss().item<float>();
                view.add_(-2 * h);
                double minus = Loss().item<float>();
                view.add_(h);
                return (plus - minus) / (2 * h);
            }
            double numeric = FiniteDiff(1e-2);
            Assert.True(Math.Abs(analytic - numeric) <= 2e-3 + 2e-2 * Math.Abs(numeric), $"{edge.Name}: autograd {analytic} vs finite difference {numeric}");
        }
    }
}
