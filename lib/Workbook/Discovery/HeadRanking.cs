using Workbook.Graph;

namespace Workbook.Discovery;

/// <summary>An attention head and how much a discovery run says it matters.</summary>
public sealed record HeadImportance(string Head, double Importance);

/// <summary>
/// Heads ranked by a discovery run, to compare with a list of heads known to matter (e.g. a model card): node search ranks
/// heads by |node score|; edge search by the largest |score| among each head's out-edges.
/// </summary>
public static class HeadRanking
{
    public static IReadOnlyList<HeadImportance> Rank(DiscoveryResult result)
    {
        IEnumerable<HeadImportance> heads;
        if (result.Nodes is { } nodes)
        {
            var graph = result.SearchedGraph;
            heads = nodes.Where(n => graph.TryGetSource(n.Node, out var s) && s.Kind == NodeKind.Head)
                .Select(n => new HeadImportance(n.Node, Math.Abs(n.Score)));
        }
        else
        {
            var scores = result.Scores;
            heads = scores.Graph.Sources.Where(s => s.Kind == NodeKind.Head)
                .Select(s => new HeadImportance(s.Name, scores.Graph.EdgesFrom(s).Select(scores.Importance).DefaultIfEmpty(0).Max()));
        }
        return heads.OrderByDescending(h => h.Importance).ThenBy(h => h.Head, StringComparer.Ordinal).ToList();
    }
}
