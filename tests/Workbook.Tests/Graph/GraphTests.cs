using Workbook.Graph;
using Workbook.Model;
using Workbook.Tests.Support;

namespace Workbook.Tests.Graph;

public class GraphTests
{
    // Configs of the paper's models (spec section E) live in the library so that the CLI can build graphs without weights.
    public static TransformerConfig Gpt2Small => KnownConfigs.Gpt2Small;
    public static TransformerConfig AttnOnly4L => KnownConfigs.AttnOnly4L;
    public static TransformerConfig Pythia28B => KnownConfigs.Pythia28B;
    static TransformerConfig Tracr(int layers) => new()
    {
        Name = "tracr", Architecture = Architecture.Tracr, NLayers = layers, DModel = 14, NHeads = 1, DHead = 7, DMlp = 1, DVocab = 6, DVocabOut = 1, NCtx = 6,
        UseLayerNorm = false, Causal = false, Activation = ActivationFunction.Relu,
    };

    [Fact]
    public void FactorizedSizesMatchAppendixD()
    {
        var gpt2 = ComputationGraph.Factorized(Gpt2Small);
        Assert.Equal(157, gpt2.Sources.Count);
        Assert.Equal(445, gpt2.Destinations.Count);
        Assert.Equal(32_491, gpt2.EdgeCount);
        Assert.Equal(1_281, ComputationGraph.Factorized(AttnOnly4L).EdgeCount);
        var pythia = ComputationGraph.Factorized(Pythia28B, separateQkv: false);
        Assert.Equal(1_057, pythia.Sources.Count);
        Assert.Equal(1_057, pythia.Destinations.Count);
        Assert.Equal(542_257, pythia.EdgeCount);
        Assert.Equal(23, ComputationGraph.Factorized(Tracr(2)).EdgeCount);
        Assert.Equal(77, ComputationGraph.Factorized(Tracr(4)).EdgeCount);
    }

    [Fact]
    public void ResidualSizesMatchAppendixD()
    {
        Assert.Equal(180, ComputationGraph.Residual(Gpt2Small).EdgeCount);
        Assert.Equal(36, ComputationGraph.Residual(AttnOnly4L).EdgeCount);
        Assert.Equal(8, ComputationGraph.Residual(Tracr(2)).EdgeCount);
        Assert.Equal(16, ComputationGraph.Residual(Tracr(4)).EdgeCount);
    }

    [Theory]
    [InlineData("tiny-gpt2-scenarios.json", 262)]
    [InlineData("tiny-neox-scenarios.json", 250)]
    public void FixtureNodeNamesAndEdgeCountsMatch(string file, int edges)
    {
        var fixture = ScenarioFixture.Load(file);
        var config = Workbook.Checkpoints.HuggingFaceCheckpoint.ReadConfig(
            Workbook.Checkpoints.ConfigJson.Load(TestFiles.Fixture(fixture.Model + "/config.json")), fixture.Model);
        var g = ComputationGraph.Factorized(config);
        Assert.Equal(fixture.Sources, g.Sources.Select(s => s.Name));
        Assert.Equal(fixture.Destinations, g.Destinations.Select(d => d.Name));
        Assert.Equal(edges, g.EdgeCount);
    }

    [Fact]
    public void ParallelBlocksHaveNoHeadToSameBlockMlpEdge()
    {
        var g = ComputationGraph.Factorized(Pythia28B, separateQkv: false);
        Assert.Null(g.FindEdge(g.Source("A0.1"), g.Destination("MLP 0")));
        Assert.NotNull(g.FindEdge(g.Source("A0.1"), g.Destination("MLP 1")));
        Assert.NotNull(g.FindEdge(g.Source("Resid Start"), g.Destination("A0.1")));
        Assert.Throws<UnknownNodeException>(() => g.Edge("A0.1", "MLP 0"));
    }

    [Fact]
    public void EdgesIntoMatchTheLayerRule()
    {
        // Slow check of the contiguous-range bookkeeping against the definition.
        var g = ComputationGraph.Factorized(Gpt2Small);
        var set = g.Edges.Select(e => (e.Source.Index, e.Destination.Index)).ToHashSet();
        foreach (var s in g.Sources)
            foreach (var d in g.Destinations)
                Assert.Equal(s.Layer < d.Layer, set.Contains((s.Index, d.Index)));
        var r = ComputationGraph.Residual(Gpt2Small);
        Assert.Single(r.EdgesFrom(r.Source("A3.7")));
        Assert.Equal("A3.7->Resid Mid 3", r.EdgesFrom(r.Source("A3.7")).Single().Name);
        Assert.Equal(13, r.EdgesInto(r.Destination("Resid Mid 0")).Length);
        Assert.Equal(new[] { "Resid Mid 11", "MLP 11" }, r.EdgesInto(r.Destination("Resid End")).ToArray().Select(e => e.Source.Name));
    }

    [Fact]
    public void UnknownNamesSuggestNearMatches()
    {
        var g = ComputationGraph.Factorized(Gpt2Small);
        var e = Assert.Throws<UnknownNodeException>(() => g.Destination("A9.9.q"));
        Assert.Contains("'A9.9.Q'", e.Message);
        Assert.Contains("'MLP 3'", Assert.Throws<UnknownNodeException>(() => g.Source("MLP3")).Message);
    }
}
