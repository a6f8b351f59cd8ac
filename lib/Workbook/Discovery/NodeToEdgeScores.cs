using Workbook.Graph;

namespace Workbook.Discovery;

/// <summary>
/// Node search results as edge scores (spec A.5 "Node search"): a node's score is the score of its single out-edge in
/// the residual graph; a factorized edge gets min(score(source node), score(destination node)), where a head input
/// (<c>A1.0.Q</c>) belongs to its head's node, an MLP input to the MLP's node, and <c>Resid End</c> contributes nothing.
/// The minimum is of the signed scores, as AutoCircuit takes it.
/// </summary>
public static class NodeToEdgeScores
{
    /// <summary>Every source of the residual graph with the score of its out-edge.</summary>
    public static IReadOnlyList<NodeScore> NodeScores(ComputationGraph residual, IReadOnlyList<double> residualEdgeScores)
    {
        if (residual.View != GraphView.Residual) throw new ArgumentException($"Node scores come from a residual graph; got the {residual.Describe()}.");
        if (residualEdgeScores.Count != residual.EdgeCount) throw new ArgumentException($"Expected {residual.EdgeCount} scores, got {residualEdgeScores.Count}.");
        return residual.Sources.Select(s => new NodeScore(s.Name, residualEdgeScores[residual.EdgesFrom(s).Single().Index])).ToList();
    }

    /// <summary>Scores for every edge of <paramref name="factorized"/> from the node scores of the same model.</summary>
    public static double[] EdgeScores(IReadOnlyList<NodeScore> nodes, ComputationGraph factorized)
    {
        if (factorized.View != GraphView.Factorized) throw new ArgumentException($"Edge scores belong to a factorized graph; got the {factorized.Describe()}.");
        var byName = nodes.ToDictionary(n => n.Node, n => n.Score, StringComparer.Ordinal);
        double Node(string name) => byName.TryGetValue(name, out double v)
            ? v
            : throw new ArgumentException($"No node score for '{name}'; the node scores belong to another model.");
        var scores = new double[factorized.EdgeCount];
        foreach (var e in factorized.Edges)
        {
            double src = Node(e.Source.Name);
            var d = e.Destination;
            string? destNode = d.Kind switch
            {
                NodeKind.Head => $"A{d.Block}.{d.Head}",
                NodeKind.Mlp => $"MLP {d.Block}",
                _ => null,
            };
            scores[e.Index] = destNode is null ? src : Math.Min(src, Node(destNode));
        }
        return scores;
    }
}
