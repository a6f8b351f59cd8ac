using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Tests.Graph;

namespace Workbook.Tests.Circuits;

public class CircuitTests
{
    static readonly ComputationGraph G = ComputationGraph.Factorized(GraphTests.Gpt2Small);

    static Circuit Random(int seed, int n, int? seqLen)
    {
        var rng = new Random(seed);
        return Circuit.From(G, Enumerable.Range(0, n).Select(_ =>
            new CircuitEdge(G.Edges[rng.Next(200)], seqLen is int t && rng.Next(4) > 0 ? rng.Next(t) : null)));
    }

    /// <summary>The set of (edge, position) pairs a circuit covers, expanded over <paramref name="seqLen"/> positions: the slow definition.</summary>
    static HashSet<(int, int)> Expand(Circuit c, int seqLen) =>
        c.Edges.SelectMany(e => e.Position is int p ? new[] { (e.Edge.Index, p) } : Enumerable.Range(0, seqLen).Select(q => (e.Edge.Index, q))).ToHashSet();

    [Fact]
    public void SetOperationsAgreeWithExpandedSets()
    {
        const int T = 5;
        for (int seed = 0; seed < 20; seed++)
        {
            var a = Random(seed, 60, T);
            var b = Random(seed + 100, 60, T);
            var ea = Expand(a, T);
            var eb = Expand(b, T);
            Assert.True(Expand(a.Union(b), T).SetEquals(ea.Union(eb)));
            Assert.True(Expand(a.Intersect(b), T).SetEquals(ea.Intersect(eb)));
            Assert.True(Expand(a.Except(b, T), T).SetEquals(ea.Except(eb)));
            var complement = Expand(a.Complement(T), T);
            Assert.Empty(complement.Intersect(ea));
            Assert.Equal((long)G.EdgeCount * T, complement.Count + ea.Count);
        }
    }

    [Fact]
    public void AllPositionsEdgeCoversPositionalCopies()
    {
        var e = G.Edge("A0.1", "A1.2.Q");
        var c = Circuit.From(G, new[] { new CircuitEdge(e, 3), new CircuitEdge(e, null), new CircuitEdge(e, 3) });
        Assert.Equal(1, c.Count);
        Assert.False(c.IsPositional);
        Assert.True(c.Contains(e, 7));
        Assert.Null(c.PositionsOf(e));
    }

    [Fact]
    public void NamesRoundTrip()
    {
        var lines = new[] { "A0.1->A1.2.Q@5", "Resid Start->MLP 0", "A9.9->Resid End@14" };
        var c = Circuit.Parse(G, lines);
        Assert.Equal(lines.OrderBy(x => G.Edge(x.Split("->")[0], x.Split("->")[1].Split('@')[0]).Index), c.ToLines());
        Assert.Equal(c.ToLines(), Circuit.Parse(G, c.ToLines()).ToLines());
    }

    [Fact]
    public void JsonRoundTripsAndResolvesLabels()
    {
        var c = Random(3, 40, 6);
        var back = CircuitJson.Read(G, CircuitJson.Write(c));
        Assert.Equal(c.ToLines(), back.ToLines());
        var labelled = CircuitJson.Read(G, "{\"edges\":[{\"src\":\"A9.9\",\"dest\":\"Resid End\",\"position\":\"end\"}]}",
            new Dictionary<string, int> { ["end"] = 14 });
        Assert.Equal("A9.9->Resid End@14", labelled.ToLines().Single());
    }

    [Theory]
    [InlineData("{\"edges\":[{\"src\":\"A9.99\",\"dest\":\"Resid End\"}]}", "'A9.9'")]
    [InlineData("{\"edges\":[{\"src\":\"A9.9\",\"dest\":\"A1.0.Q\"}]}", "no edge")]
    [InlineData("{\"edges\":[{\"src\":\"A9.9\",\"dest\":\"Resid End\",\"position\":\"IO\"}]}", "label 'IO'")]
    [InlineData("{\"edges\":[{\"src\":\"A9.9\",\"dest\":\"Resid End\",\"position\":-2}]}", "non-negative")]
    [InlineData("{\"edge\":[]}", "\"edges\"")]
    [InlineData("{", "not valid JSON")]
    public void BadCircuitFilesAreRejectedWithReasons(string json, string expected)
    {
        var e = Assert.ThrowsAny<Exception>(() => CircuitJson.Read(G, json));
        Assert.True(e is FormatException or ArgumentException);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ParseRejectsMalformedNames()
    {
        Assert.Contains("SRC->DEST", Assert.Throws<FormatException>(() => Circuit.Parse(G, new[] { "A0.1 A1.2.Q" })).Message);
        Assert.Contains("not a non-negative integer", Assert.Throws<FormatException>(() => Circuit.Parse(G, new[] { "A0.1->A1.2.Q@x" })).Message);
    }
}
