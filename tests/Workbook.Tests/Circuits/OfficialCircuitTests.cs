using System.Text.RegularExpressions;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tests.Support;

namespace Workbook.Tests.Circuits;

/// <summary>Official circuits against the counts of spec Appendix D and the complete IOI list of Appendix A.</summary>
public class OfficialCircuitTests
{
    static SymbolicCircuit Get(string name) => OfficialCircuits.Get(name).Circuit;

    /// <summary>(edge, position) pairs a circuit covers at positions [from, seqLen): the slow definition.</summary>
    static long EdgePositions(Circuit c, int seqLen, int from = 0) =>
        c.Edges.Sum(e => e.Position is int p ? (p >= from && p < seqLen ? 1 : 0) : seqLen - from);

    // IOI template 0 word positions (spec D.2, no BOS): IO, S1, S1+1, S2, end.
    static WordPositions IoiPositions(int io, int s1, int s2, int end) =>
        new(new KeyValuePair<string, int>[] { new("IO", io), new("S1", s1), new("S1+1", s1 + 1), new("S2", s2), new("end", end) });

    [Fact]
    public void IoiEdgeCircuitMatchesAppendixAExactly()
    {
        var expected = AppendixA();
        Assert.Equal(869, expected.Count);
        var actual = Get("ioi-edges").Edges.Select(e => (e.Source, e.Destination, e.Position!)).ToHashSet();
        Assert.Empty(expected.Except(actual));
        Assert.Empty(actual.Except(expected));
        Assert.Equal(869, Get("ioi-edges").Edges.Count);
        Assert.Equal(771, Get("ioi-edges").DistinctEdgeCount);
    }

    [Fact]
    public void IoiEdgeCircuitResolvesTo869PairsAnd771Names()
    {
        var graph = ComputationGraph.Factorized(KnownConfigs.Gpt2Small);
        var positions = IoiPositions(2, 4, 10, 14);
        var specific = Get("ioi-edges").Resolve(graph, positions, TokenPositions.Specific);
        Assert.Equal(869, specific.Count);
        Assert.True(specific.IsPositional);
        var all = Get("ioi-edges").Resolve(graph, positions, TokenPositions.All);
        Assert.Equal(771, all.Count);
        Assert.False(all.IsPositional);
        Assert.Equal(771, specific.WithoutPositions().Count);
        // Spot checks (Appendix A and spec F.8): the INPUT->duplicate-token connection only adds MLP 0-2 at S2.
        Assert.True(specific.Contains(graph.Edge("A9.9", "Resid End"), 14));
        Assert.False(specific.Contains(graph.Edge("A9.9", "Resid End"), 13));
        Assert.True(specific.Contains(graph.Edge("Resid Start", "MLP 2"), 10));
        Assert.False(specific.Contains(graph.Edge("Resid Start", "MLP 3"), 10));
        Assert.True(specific.Contains(graph.Edge("A2.2", "A5.5.K"), 5));
        Assert.True(specific.Contains(graph.Edge("MLP 10", "Resid End"), 14));
        Assert.False(all.Contains(graph.Edge("A9.9", "A10.0.Q")));
    }

    [Fact]
    public void IoiNodeCircuitCountsMatchAppendixD()
    {
        var graph = ComputationGraph.Residual(KnownConfigs.Gpt2Small);
        var circuit = Get("ioi-nodes");
        var all = circuit.Resolve(graph, IoiPositions(2, 4, 10, 14), TokenPositions.All);
        Assert.Equal(62, all.Count);
        Assert.Equal(118, all.Complement().Count);
        Assert.Equal(180, graph.EdgeCount);
        // Token-specific: for prompt lengths T = 14..20 the kept (edge, position) pairs are 530, 566, ..., 746.
        var kept = new[] { 530, 566, 602, 638, 674, 710, 746 };
        for (int t = 14; t <= 20; t++)
        {
            var specific = circuit.Resolve(graph, IoiPositions(1, 3, 9, t - 1), TokenPositions.Specific);
            Assert.Equal(kept[t - 14], EdgePositions(specific, t));
            Assert.Equal(180L * t - kept[t - 14], EdgePositions(specific.Complement(t), t));
        }
        // Only head edges are ever ablated in node mode (spec F.7).
        Assert.All(all.Complement().Edges, e => Assert.Equal(NodeKind.Head, e.Edge.Source.Kind));
        Assert.Contains("A9.9->Resid Mid 9@14", circuit.Resolve(graph, IoiPositions(2, 4, 10, 14), TokenPositions.Specific).ToLines());
    }

    static readonly WordPositions DocstringWithBos = DocstringGenerator.WordIdxs.Shifted(1);

    [Fact]
    public void DocstringCircuitCountsMatchAppendixD()
    {
        var factorized = ComputationGraph.Factorized(KnownConfigs.AttnOnly4L);
        var edges = Get("docstring-edges");
        Assert.Equal(24, edges.Resolve(factorized, DocstringWithBos, TokenPositions.All).Count);
        var specific = edges.Resolve(factorized, DocstringWithBos, TokenPositions.Specific);
        Assert.Equal(34, specific.Count);
        // Resid Start->A2.0.K exists only in the all-tokens variant (spec F.9).
        Assert.Empty(specific.PositionsOf(factorized.Edge("Resid Start", "A2.0.K"))!);
        Assert.True(specific.Contains(factorized.Edge("A1.4", "A2.0.V"), 14)); // ,_B = 13 without BOS

        var residual = ComputationGraph.Residual(KnownConfigs.AttnOnly4L);
        var nodes = Get("docstring-nodes");
        var allNodes = nodes.Resolve(residual, DocstringWithBos, TokenPositions.All);
        Assert.Equal(15, allNodes.Count);
        Assert.Equal(21, allNodes.Complement().Count);
        // Token variant: 41 tokens with BOS, the first 11 shared by clean and corrupt (tail divergence): 30 patchable.
        var tokenNodes = nodes.Resolve(residual, DocstringWithBos, TokenPositions.Specific);
        Assert.Equal(215, EdgePositions(tokenNodes, 41, from: 11));
        Assert.Equal(1080 - 215, EdgePositions(tokenNodes.Complement(41), 41, from: 11));
        // The extras span 13..40 with BOS.
        Assert.Equal(Enumerable.Range(13, 28), tokenNodes.PositionsOf(residual.Edge("A1.0", "Resid Post 1"))!);
    }

    [Fact]
    public void SportsPlayersCircuitHas4518PairsSpreadAsAppendixD()
    {
        var graph = ComputationGraph.Factorized(KnownConfigs.Pythia28B, separateQkv: false);
        var positions = SportsPlayersGenerator.WordIdxs.Shifted(1);
        var circuit = Get("sports-players").Resolve(graph, positions, TokenPositions.Specific);
        Assert.Equal(4518, circuit.Count);
        var perPosition = circuit.Edges.GroupBy(e => e.Position!.Value).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(new Dictionary<int, int> { [13] = 1121, [14] = 1121, [15] = 2270, [19] = 6 }, perPosition);
        Assert.Equal(3_795_799L, 542_257L * 7);
        Assert.True(circuit.Contains(graph.Edge("MLP 15", "A16.20"), 15));
        // Parallel blocks: no head feeds its own block's MLP, so that pair is filtered out (spec C.3).
        Assert.Null(graph.FindEdge(graph.Source("A0.3"), graph.Destination("MLP 0")));
        Assert.True(circuit.Contains(graph.Edge("MLP 0", "A1.7"), 14));
    }

    [Theory]
    [InlineData("tracr-xproportion-ours", 3, 23)]
    [InlineData("tracr-xproportion-theirs", 5, 23)]
    [InlineData("tracr-reverse-ours", 2, 77)]
    [InlineData("tracr-reverse-theirs", 10, 77)]
    public void TracrGroundTruthsResolveInTheirModels(string name, int edges, int total)
    {
        var official = OfficialCircuits.Get(name);
        var graph = ComputationGraph.Factorized(official.Model);
        Assert.Equal(total, graph.EdgeCount);
        var c = official.Circuit.Resolve(graph, WordPositions.Empty, TokenPositions.Specific);
        Assert.Equal(edges, c.Count);
        Assert.False(c.IsPositional);
    }

    [Fact]
    public void FamiliesPickTheVariantAndMismatchesAreExplained()
    {
        Assert.Equal("ioi-nodes", OfficialCircuits.For("ioi", Component.Node).Name);
        Assert.Equal("docstring-edges", OfficialCircuits.For("docstring", Component.Edge).Name);
        var e = Assert.Throws<ArgumentException>(() => OfficialCircuits.For("ioi-edges", Component.Node));
        Assert.Contains("'ioi'", e.Message);
        Assert.Contains("'ioi-edges'", Assert.Throws<KeyNotFoundException>(() => OfficialCircuits.Get("ioi-edge")).Message);
        // A family's name is not a circuit: the error names both members instead of suggesting the name itself back.
        var family = Assert.Throws<KeyNotFoundException>(() => OfficialCircuits.Get("ioi")).Message;
        Assert.Contains("'ioi-nodes' (nodes) and 'ioi-edges' (edges)", family);
        Assert.DoesNotContain("Did you mean 'ioi'", family);
        var wrongGraph = Assert.Throws<ArgumentException>(() =>
            Get("ioi-edges").Resolve(ComputationGraph.Residual(KnownConfigs.Gpt2Small), WordPositions.Empty, TokenPositions.All));
        Assert.Contains("edge circuit", wrongGraph.Message);
        var missingLabel = Assert.Throws<ArgumentException>(() =>
            Get("ioi-edges").Resolve(ComputationGraph.Factorized(KnownConfigs.Gpt2Small), WordPositions.Empty, TokenPositions.Specific));
        Assert.Contains("Unknown position label", missingLabel.Message);
    }

    /// <summary>Appendix A of the spec: "DEST @ POSITION &lt;- SRC, SRC, ..." lines.</summary>
    static HashSet<(string, string, string)> AppendixA()
    {
        string spec = TestFiles.ReadPaperReference();
        int start = spec.IndexOf("## Appendix A", StringComparison.Ordinal);
        int open = spec.IndexOf("```", start, StringComparison.Ordinal), close = spec.IndexOf("```", open + 3, StringComparison.Ordinal);
        var result = new HashSet<(string, string, string)>();
        foreach (var line in spec[(open + 3)..close].Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0))
        {
            var m = Regex.Match(line, @"^(.+?) @ (\S+) <- (.+)$");
            Assert.True(m.Success, line);
            foreach (var src in m.Groups[3].Value.Split(", ")) result.Add((src.Trim(), m.Groups[1].Value, m.Groups[2].Value));
        }
        return result;
    }
}
