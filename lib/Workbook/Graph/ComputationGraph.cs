using Workbook.Model;
using Workbook.Util;

namespace Workbook.Graph;

/// <summary>
/// The nodes and edges of a model in the factorized (edge) or residual (node) view, computed from a config
/// alone. Names follow AutoCircuit: sources <c>Resid Start</c>, <c>A{l}.{h}</c>, <c>MLP {l}</c>; destinations
/// <c>A{l}.{h}.Q|K|V</c> (or <c>A{l}.{h}</c> when Q/K/V are not separated), <c>MLP {l}</c>, <c>Resid End</c>;
/// plus <c>Resid Mid {l}</c> and <c>Resid Post {l}</c> in the residual view.
///
/// Factorized: an edge exists exactly when the source's layer is below the destination's. Layers: Resid Start 0;
/// sequential blocks put block b's heads at 2b+1 and its MLP at 2b+2; attention-only and parallel (GPT-NeoX) blocks
/// put heads (and MLP) at b+1; Resid End is one past the last. Residual: an edge exists exactly when the source's
/// layer is one below the destination's.
/// Sources are ordered by layer and each destination's sources form a contiguous range of that order.
/// </summary>
public sealed class ComputationGraph
{
    readonly Dictionary<string, SourceNode> _sourcesByName;
    readonly Dictionary<string, DestinationNode> _destsByName;
    readonly Edge[] _edges;
    readonly int[] _firstEdgeOfDest;

    public GraphView View { get; }
    public bool SeparateQkv { get; }
    public TransformerConfig Config { get; }
    public IReadOnlyList<SourceNode> Sources { get; }
    public IReadOnlyList<DestinationNode> Destinations { get; }
    public IReadOnlyList<Edge> Edges => _edges;
    public int EdgeCount => _edges.Length;

    ComputationGraph(TransformerConfig config, GraphView view, bool separateQkv, List<SourceNode> sources, List<DestinationNode> dests, Func<SourceNode, DestinationNode, bool> connected)
    {
        Config = config;
        View = view;
        SeparateQkv = separateQkv;
        Sources = sources;
        _sourcesByName = sources.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var finalDests = new List<DestinationNode>();
        var edges = new List<Edge>();
        _firstEdgeOfDest = new int[dests.Count];
        foreach (var d in dests)
        {
            int first = -1, count = 0;
            foreach (var s in sources)
            {
                if (!connected(s, d)) continue;
                if (first < 0) first = s.Index;
                if (s.Index != first + count) throw new InvalidOperationException($"Sources of {d.Name} are not contiguous.");
                count++;
            }
            var dest = d with { FirstSource = Math.Max(first, 0), SourceCount = count };
            _firstEdgeOfDest[dest.Index] = edges.Count;
            for (int i = 0; i < count; i++) edges.Add(new Edge(sources[first + i], dest, edges.Count));
            finalDests.Add(dest);
        }
        Destinations = finalDests;
        _destsByName = finalDests.ToDictionary(d => d.Name, StringComparer.Ordinal);
        _edges = edges.ToArray();
    }

    /// <summary>The factorized (edge-level) graph. <paramref name="separateQkv"/>: one destination per Q, K and V input of each head.</summary>
    public static ComputationGraph Factorized(TransformerConfig c, bool separateQkv = true)
    {
        var sources = new List<SourceNode>();
        var dests = new List<DestinationNode>();
        sources.Add(new SourceNode("Resid Start", 0, NodeKind.ResidStart, 0, -1, -1));
        bool sequential = c.HasMlp && !c.ParallelAttnMlp;
        int HeadLayer(int b) => sequential ? 2 * b + 1 : b + 1;
        int MlpLayer(int b) => sequential ? 2 * b + 2 : b + 1;
        for (int b = 0; b < c.NLayers; b++)
        {
            for (int h = 0; h < c.NHeads; h++)
            {
                sources.Add(new SourceNode($"A{b}.{h}", sources.Count, NodeKind.Head, HeadLayer(b), b, h));
                if (separateQkv)
                    foreach (var input in new[] { HeadInput.Q, HeadInput.K, HeadInput.V })
                        dests.Add(new DestinationNode($"A{b}.{h}.{input}", dests.Count, NodeKind.Head, HeadLayer(b), b, h, input));
                else
                    dests.Add(new DestinationNode($"A{b}.{h}", dests.Count, NodeKind.Head, HeadLayer(b), b, h, HeadInput.All));
            }
            if (c.HasMlp)
            {
                sources.Add(new SourceNode($"MLP {b}", sources.Count, NodeKind.Mlp, MlpLayer(b), b, -1));
                dests.Add(new DestinationNode($"MLP {b}", dests.Count, NodeKind.Mlp, MlpLayer(b), b, -1, HeadInput.None));
            }
        }
        int end = (sequential ? 2 * c.NLayers : c.NLayers) + 1;
        dests.Add(new DestinationNode("Resid End", dests.Count, NodeKind.ResidEnd, end, c.NLayers, -1, HeadInput.None));
        return new ComputationGraph(c, GraphView.Factorized, separateQkv, sources, dests, (s, d) => s.Layer < d.Layer);
    }

    /// <summary>The residual (node-level) graph: each head has a single out-edge into its block's residual.</summary>
    public static ComputationGraph Residual(TransformerConfig c)
    {
        var sources = new List<SourceNode>();
        var dests = new List<DestinationNode>();
        bool sequential = c.HasMlp && !c.ParallelAttnMlp;
        int layer = 0;
        for (int b = 0; b < c.NLayers; b++)
        {
            bool last = b == c.NLayers - 1;
            string input = b == 0 ? "Resid Start" : $"Resid Post {b - 1}";
            sources.Add(new SourceNode(input, sources.Count, b == 0 ? NodeKind.ResidStart : NodeKind.ResidPost, layer, b - 1, -1));
            for (int h = 0; h < c.NHeads; h++)
                sources.Add(new SourceNode($"A{b}.{h}", sources.Count, NodeKind.Head, layer, b, h));
            if (sequential)
            {
                dests.Add(new DestinationNode($"Resid Mid {b}", dests.Count, NodeKind.ResidMid, layer + 1, b, -1, HeadInput.None));
                sources.Add(new SourceNode($"Resid Mid {b}", sources.Count, NodeKind.ResidMid, layer + 1, b, -1));
                sources.Add(new SourceNode($"MLP {b}", sources.Count, NodeKind.Mlp, layer + 1, b, -1));
                layer++;
            }
            else if (c.HasMlp)
            {
                sources.Add(new SourceNode($"MLP {b}", sources.Count, NodeKind.Mlp, layer, b, -1));
            }
            layer++;
            dests.Add(new DestinationNode(last ? "Resid End" : $"Resid Post {b}", dests.Count, last ? NodeKind.ResidEnd : NodeKind.ResidPost, layer, b, -1, HeadInput.None));
        }
        return new ComputationGraph(c, GraphView.Residual, separateQkv: false, sources, dests, (s, d) => s.Layer + 1 == d.Layer);
    }

    /// <summary>The graph a methodology needs: factorized for edge ablation, residual for node ablation.</summary>
    public static ComputationGraph For(TransformerConfig c, GraphView view, bool separateQkv = true) =>
        view == GraphView.Factorized ? Factorized(c, separateQkv) : Residual(c);

    public SourceNode Source(string name) => _sourcesByName.TryGetValue(name, out var s)
        ? s
        : throw new UnknownNodeException($"Unknown source node '{name}' in the {Describe()}.{NearestNames.DidYouMean(name, _sourcesByName.Keys)}");

    public DestinationNode Destination(string name) => _destsByName.TryGetValue(name, out var d)
        ? d
        : throw new UnknownNodeException($"Unknown destination node '{name}' in the {Describe()}.{NearestNames.DidYouMean(name, _destsByName.Keys)}");

    public bool TryGetSource(string name, out SourceNode node) => _sourcesByName.TryGetValue(name, out node!);
    public bool TryGetDestination(string name, out DestinationNode node) => _destsByName.TryGetValue(name, out node!);

    /// <summary>The edge from <paramref name="src"/> to <paramref name="dest"/>, or null when these nodes are not connected.</summary>
    public Edge? FindEdge(SourceNode src, DestinationNode dest)
    {
        int offset = src.Index - dest.FirstSource;
        return offset >= 0 && offset < dest.SourceCount ? _edges[_firstEdgeOfDest[dest.Index] + offset] : null;
    }

    /// <summary>The edge named <c>src->dest</c>; unknown nodes and unconnected pairs are errors that say why.</summary>
    public Edge Edge(string srcName, string destName)
    {
        var s = Source(srcName);
        var d = Destination(destName);
        return FindEdge(s, d) ?? throw new UnknownNodeException(
            $"There is no edge {srcName}->{destName} in the {Describe()}: source layer {s.Layer} is not {(View == GraphView.Factorized ? "below" : "directly below")} destination layer {d.Layer}.");
    }

    /// <summary>Edges into destination <paramref name="dest"/>, in source order.</summary>
    public ReadOnlySpan<Edge> EdgesInto(DestinationNode dest) => _edges.AsSpan(_firstEdgeOfDest[dest.Index], dest.SourceCount);

    /// <summary>Edges out of <paramref name="src"/>, in destination order.</summary>
    public IEnumerable<Edge> EdgesFrom(SourceNode src) =>
        Destinations.Select(d => FindEdge(src, d)).Where(e => e is not null).Select(e => e!);

    public string Describe() =>
        $"{(View == GraphView.Factorized ? "factorized" : "residual")} graph of '{Config.Name}' ({Sources.Count} sources, {Destinations.Count} destinations, {EdgeCount} edges{(View == GraphView.Factorized && !SeparateQkv ? ", Q/K/V not separated" : "")})";

    public override string ToString() => Describe();
}

/// <summary>A node or edge name that does not exist in the graph.</summary>
public sealed class UnknownNodeException : ArgumentException
{
    public UnknownNodeException(string message) : base(message) { }
}
