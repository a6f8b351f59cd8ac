using Workbook.Graph;

namespace Workbook.Patching;

/// <summary>
/// Where each graph source comes from in the forward pass, precomputed so that callbacks map
/// "heads of block 3" or "MLP 5" to source indices without name lookups.
/// </summary>
internal sealed class SourceIndex
{
    public int ResidStart { get; } = -1;
    /// <summary>Index of head 0 of each block (heads are contiguous), or -1.</summary>
    public int[] FirstHead { get; }
    public int[] Mlp { get; }
    /// <summary>Residual view: the block input (Resid Start / Resid Post b-1) as a source, per block.</summary>
    public int[] BlockInput { get; }
    /// <summary>Residual view: Resid Mid b as a source.</summary>
    public int[] ResidMid { get; }

    public SourceIndex(ComputationGraph graph)
    {
        int L = graph.Config.NLayers;
        FirstHead = Enumerable.Repeat(-1, L).ToArray();
        Mlp = Enumerable.Repeat(-1, L).ToArray();
        BlockInput = Enumerable.Repeat(-1, L).ToArray();
        ResidMid = Enumerable.Repeat(-1, L).ToArray();
        foreach (var s in graph.Sources)
        {
            switch (s.Kind)
            {
                case NodeKind.ResidStart:
                    ResidStart = s.Index;
                    if (graph.View == GraphView.Residual) BlockInput[0] = s.Index;
                    break;
                case NodeKind.ResidPost: BlockInput[s.Block + 1] = s.Index; break;
                case NodeKind.Head when s.Head == 0: FirstHead[s.Block] = s.Index; break;
                case NodeKind.Mlp: Mlp[s.Block] = s.Index; break;
                case NodeKind.ResidMid: ResidMid[s.Block] = s.Index; break;
            }
        }
    }
}

/// <summary>What a patch site is: the destinations the engine rewrites together in one product.</summary>
public enum SiteKind { Attention, Mlp, ResidEnd, ResidMid, ResidPost }

/// <summary>
/// Destinations patched together. Factorized graphs have one site per block's attention (all heads' Q/K/V
/// inputs, rows ordered input-major then head: Q of heads 0..H-1, then K, then V), one per MLP, and Resid End.
/// Residual graphs have one site per destination. All destinations of a site read the same source range.
/// </summary>
public sealed record PatchSite(SiteKind Kind, int Block, IReadOnlyList<DestinationNode> Destinations, int FirstSource, int SourceCount)
{
    public int Rows => Destinations.Count;

    public static IReadOnlyList<PatchSite> For(ComputationGraph graph)
    {
        var sites = new List<PatchSite>();
        if (graph.View == GraphView.Residual)
        {
            foreach (var d in graph.Destinations)
                sites.Add(new PatchSite(d.Kind switch
                {
                    NodeKind.ResidMid => SiteKind.ResidMid,
                    NodeKind.ResidPost => SiteKind.ResidPost,
                    _ => SiteKind.ResidEnd,
                }, d.Block, new[] { d }, d.FirstSource, d.SourceCount));
            return sites;
        }
        var inputs = graph.SeparateQkv ? new[] { HeadInput.Q, HeadInput.K, HeadInput.V } : new[] { HeadInput.All };
        for (int b = 0; b < graph.Config.NLayers; b++)
        {
            var heads = graph.Destinations.Where(d => d.Kind == NodeKind.Head && d.Block == b).ToList();
            var ordered = inputs.SelectMany(input => heads.Where(h => h.Input == input).OrderBy(h => h.Head)).ToList();
            sites.Add(new PatchSite(SiteKind.Attention, b, ordered, ordered[0].FirstSource, ordered[0].SourceCount));
            var mlp = graph.Destinations.FirstOrDefault(d => d.Kind == NodeKind.Mlp && d.Block == b);
            if (mlp != null) sites.Add(new PatchSite(SiteKind.Mlp, b, new[] { mlp }, mlp.FirstSource, mlp.SourceCount));
        }
        var end = graph.Destinations.Single(d => d.Kind == NodeKind.ResidEnd);
        sites.Add(new PatchSite(SiteKind.ResidEnd, graph.Config.NLayers, new[] { end }, end.FirstSource, end.SourceCount));
        return sites;
    }
}
