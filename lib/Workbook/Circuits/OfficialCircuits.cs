using Workbook.Checkpoints;
using Workbook.Embedded;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Util;

namespace Workbook.Circuits;

/// <summary>An official circuit: the symbolic circuit, the task whose prompts label its positions, and the model it was found in.</summary>
public sealed record OfficialCircuit(string Name, string Task, TransformerConfig Model, SymbolicCircuit Circuit);

/// <summary>
/// The circuits the paper evaluates, as data (spec C): IOI (Wang et al.) as a node circuit and as an edge circuit built
/// by the expansion rule C.1; Docstring (Heimersheim &amp; Janiak) node and edge circuits; Sports Players (Nanda et al.);
/// and the Tracr ground truths, "ours" (resample ablation) and "theirs" (Conmy et al.'s zero-ablation circuits).
/// Positions are labels of the task's prompts (<c>word_idxs</c>), resolved per dataset.
/// </summary>
public static class OfficialCircuits
{
    public static IReadOnlyList<string> Names { get; } = new[]
    {
        "ioi-edges", "ioi-nodes", "docstring-edges", "docstring-nodes", "sports-players",
        "tracr-xproportion-ours", "tracr-xproportion-theirs", "tracr-reverse-ours", "tracr-reverse-theirs", "toy-ioi-nodes",
        "toy-ioi-edges", "toy-ioi-edges-induced", "toy-docstring-nodes", "toy-docstring-edges", "toy-sports-nodes", "toy-sports-edges",
    };

    /// <summary>Circuit families with a node and an edge variant of the same circuit, for grids over the component.</summary>
    public static IReadOnlyDictionary<string, (string Nodes, string Edges)> Families { get; } = new Dictionary<string, (string, string)>
    {
        ["ioi"] = ("ioi-nodes", "ioi-edges"),
        ["docstring"] = ("docstring-nodes", "docstring-edges"),
        ["toy-ioi"] = ("toy-ioi-nodes", "toy-ioi-edges"),
        ["toy-docstring"] = ("toy-docstring-nodes", "toy-docstring-edges"),
        ["toy-sports"] = ("toy-sports-nodes", "toy-sports-edges"),
    };

    static readonly Dictionary<string, Lazy<OfficialCircuit>> Registry = new(StringComparer.Ordinal)
    {
        ["ioi-edges"] = new(() => new("ioi-edges", "ioi", KnownConfigs.Gpt2Small, IoiEdges())),
        ["ioi-nodes"] = new(() => new("ioi-nodes", "ioi", KnownConfigs.Gpt2Small, IoiNodes())),
        ["docstring-edges"] = new(() => new("docstring-edges", "docstring", KnownConfigs.AttnOnly4L, DocstringEdges())),
        ["docstring-nodes"] = new(() => new("docstring-nodes", "docstring", KnownConfigs.AttnOnly4L, DocstringNodes())),
        ["sports-players"] = new(() => new("sports-players", "sports-players", KnownConfigs.Pythia28B, SportsPlayers())),
        ["tracr-xproportion-ours"] = new(() => new("tracr-xproportion-ours", "tracr-xproportion", KnownConfigs.TracrXProportion,
            NameOnly("tracr-xproportion-ours", "X-Proportion ground truth for resample ablation (AutoCircuit's tracr_xproportion_official_edges)",
                "Resid Start->MLP 0", "MLP 0->A1.0.V", "A1.0->Resid End"))),
        ["tracr-xproportion-theirs"] = new(() => new("tracr-xproportion-theirs", "tracr-xproportion", KnownConfigs.TracrXProportion,
            NameOnly("tracr-xproportion-theirs", "X-Proportion ground truth for zero ablation (Conmy et al.'s ACDC circuit)",
                "Resid Start->MLP 0", "MLP 0->A1.0.V", "A1.0->Resid End", "Resid Start->A1.0.Q", "Resid Start->A1.0.K"))),
        ["tracr-reverse-ours"] = new(() => new("tracr-reverse-ours", "tracr-reverse", KnownConfigs.TracrReverse,
            NameOnly("tracr-reverse-ours", "Reverse ground truth for resample ablation (AutoCircuit's tracr_reverse_true_edges)",
                "Resid Start->A3.0.V", "A3.0->Resid End"))),
        ["tracr-reverse-theirs"] = new(() => new("tracr-reverse-theirs", "tracr-reverse", KnownConfigs.TracrReverse,
            NameOnly("tracr-reverse-theirs", "Reverse ground truth for zero ablation (Conmy et al.'s ACDC circuit)",
                "A3.0->Resid End", "MLP 2->A3.0.Q", "Resid Start->A3.0.K", "Resid Start->A3.0.V", "MLP 1->MLP 2", "MLP 0->MLP 1",
                "Resid Start->MLP 1", "A0.0->MLP 0", "Resid Start->MLP 0", "Resid Start->A0.0.V"))),
        ["toy-ioi-nodes"] = new(ToyIoiNodes),
        ["toy-ioi-edges"] = new(() => new OfficialCircuit("toy-ioi-edges", "ioi", ToyIoiConfig(), ToyIoi.EdgeCircuit)),
        ["toy-ioi-edges-induced"] = new(ToyIoiEdgesInduced),
        ["toy-docstring-nodes"] = new(() => new OfficialCircuit("toy-docstring-nodes", "docstring", ToyDocstringConfig(), ToyDocstring.NodeCircuit)),
        ["toy-docstring-edges"] = new(() => new OfficialCircuit("toy-docstring-edges", "docstring", ToyDocstringConfig(), ToyDocstring.EdgeCircuit)),
        ["toy-sports-nodes"] = new(() => new OfficialCircuit("toy-sports-nodes", "toy-sports", ToySportsConfig(), ToySports.NodeCircuit)),
        ["toy-sports-edges"] = new(() => new OfficialCircuit("toy-sports-edges", "toy-sports", ToySportsConfig(), ToySports.EdgeCircuit)),
    };

    public static bool Exists(string name) => Registry.ContainsKey(name);

    public static OfficialCircuit Get(string name) => Registry.TryGetValue(name, out var c)
        ? c.Value
        : Families.TryGetValue(name, out var family)
            // A family names two circuits; suggesting the family's own name back ("Did you mean 'ioi'?") would not help.
            ? throw new KeyNotFoundException($"'{name}' names two circuits, '{family.Nodes}' (nodes) and '{family.Edges}' (edges): get one of them, or use OfficialCircuits.For(\"{name}\", component).")
            : throw new KeyNotFoundException($"Unknown circuit '{name}'.{NearestNames.DidYouMean(name, Names.Concat(Families.Keys))} Official circuits: {string.Join(", ", Names)}.");

    /// <summary>The variant of <paramref name="name"/> (a circuit or a family) for <paramref name="component"/>.</summary>
    public static OfficialCircuit For(string name, Component component)
    {
        if (Families.TryGetValue(name, out var family)) return Get(component == Component.Node ? family.Nodes : family.Edges);
        var circuit = Get(name);
        if (circuit.Circuit.Component != component)
        {
            string? family2 = Families.FirstOrDefault(f => f.Value.Nodes == name || f.Value.Edges == name).Key;
            throw new ArgumentException(
                $"Circuit '{name}' is {(circuit.Circuit.Component == Component.Node ? "a node" : "an edge")} circuit, so it cannot be evaluated with " +
                $"{component.ToString().ToLowerInvariant()} ablation{(family2 is null ? "" : $"; use '{family2}' for both node and edge variants")}.");
        }
        return circuit;
    }

    static SymbolicCircuit NameOnly(string name, string description, params string[] edges) =>
        new(name, description, GraphView.Factorized, separateQkv: true, edges.Select(e =>
        {
            var parts = e.Split("->");
            return new SymbolicEdge(parts[0], parts[1], null);
        }));

    // ----------------------------------------------------------------------------------------------- IOI (spec C.1)

    /// <summary>IOI head classes (ACDC's IOI_CIRCUIT; 26 heads).</summary>
    public static IReadOnlyDictionary<string, string[]> IoiHeadClasses { get; } = new Dictionary<string, string[]>
    {
        ["name mover"] = new[] { "A9.9", "A10.0", "A9.6" },
        ["backup name mover"] = new[] { "A10.10", "A10.6", "A10.2", "A10.1", "A11.2", "A9.7", "A9.0", "A11.9" },
        ["negative"] = new[] { "A10.7", "A11.10" },
        ["s2 inhibition"] = new[] { "A7.3", "A7.9", "A8.6", "A8.10" },
        ["induction"] = new[] { "A5.5", "A5.8", "A5.9", "A6.9" },
        ["duplicate token"] = new[] { "A0.1", "A0.10", "A3.0" },
        ["previous token"] = new[] { "A2.2", "A4.11" },
    };

    static readonly Dictionary<string, string> IoiNodePosition = new()
    {
        ["name mover"] = "end", ["backup name mover"] = "end", ["negative"] = "end", ["s2 inhibition"] = "end",
        ["induction"] = "S2", ["duplicate token"] = "S2", ["previous token"] = "S1+1",
    };

    static SymbolicCircuit IoiNodes()
    {
        var kept = IoiHeadClasses.SelectMany(c => c.Value.Select(h => (Head: h, Position: (string?)IoiNodePosition[c.Key])));
        return NodeCircuit("ioi-nodes",
            "IOI node circuit (Wang et al.): the 26 class heads, each kept at its class's position (end, S2 or S1+1); every other head ablated",
            KnownConfigs.Gpt2Small, kept);
    }

    const string Input = "INPUT", Output = "OUTPUT";

    // The 15 class-level connections of Wang et al.'s circuit: (from, to, destination inputs with positions).
    static readonly (string From, string To, (char Input, string Position)[] Dests)[] IoiConnections =
    {
        (Input, "previous token", new[] { ('Q', "S1+1"), ('K', "S1"), ('V', "S1") }),
        (Input, "duplicate token", new[] { ('Q', "S2"), ('K', "S1"), ('V', "S1") }),
        (Input, "s2 inhibition", new[] { ('Q', "end") }),
        (Input, "negative", new[] { ('K', "IO"), ('V', "IO") }),
        (Input, "name mover", new[] { ('K', "IO"), ('V', "IO") }),
        (Input, "backup name mover", new[] { ('K', "IO"), ('V', "IO") }),
        ("previous token", "induction", new[] { ('K', "S1+1"), ('V', "S1+1") }),
        ("induction", "s2 inhibition", new[] { ('K', "S2"), ('V', "S2") }),
        ("duplicate token", "s2 inhibition", new[] { ('K', "S2"), ('V', "S2") }),
        ("s2 inhibition", "negative", new[] { ('Q', "end") }),
        ("s2 inhibition", "name mover", new[] { ('Q', "end") }),
        ("s2 inhibition", "backup name mover", new[] { ('Q', "end") }),
        ("negative", Output, new[] { ('R', "end") }),
        ("name mover", Output, new[] { ('R', "end") }),
        ("backup name mover", Output, new[] { ('R', "end") }),
    };

    static int BlockOf(string head) => int.Parse(head[1..head.IndexOf('.')], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// The IOI edge circuit by AutoCircuit's expansion rule (spec C.1): for each connection, sources = the heads of
    /// the "from" class (or Resid Start) and destinations = each listed input of each "to" head at its position (or
    /// Resid End at end); every MLP between the classes' layers joins both sides at every destination position
    /// (MLPs count as part of the direct path); all existing source→destination pairs are edges. For the output
    /// connections the MLP range runs to the last layer (AutoCircuit bounds it by the end token's index, ≥ 13).
    /// </summary>
    static SymbolicCircuit IoiEdges()
    {
        var config = KnownConfigs.Gpt2Small;
        var graph = ComputationGraph.Factorized(config);
        var edges = new List<SymbolicEdge>();
        var seen = new HashSet<(string, string, string)>();
        foreach (var (from, to, dests) in IoiConnections)
        {
            var sources = from == Input ? new List<string> { "Resid Start" } : IoiHeadClasses[from].ToList();
            var destinations = to == Output
                ? dests.Select(d => (Node: "Resid End", d.Position)).ToList()
                : IoiHeadClasses[to].SelectMany(h => dests.Select(d => (Node: $"{h}.{d.Input}", d.Position))).ToList();
            int srcLayer = from == Input ? 0 : IoiHeadClasses[from].Min(BlockOf);
            int destLayer = to == Output ? config.NLayers : IoiHeadClasses[to].Max(BlockOf);
            for (int l = srcLayer; l < destLayer; l++)
                foreach (var (_, position) in dests)
                {
                    sources.Add($"MLP {l}");
                    destinations.Add(($"MLP {l}", position));
                }
            foreach (var s in sources.Distinct())
                foreach (var (d, position) in destinations)
                    if (graph.TryGetSource(s, out var src) && graph.TryGetDestination(d, out var dest) && graph.FindEdge(src, dest) is not null
                        && seen.Add((s, d, position)))
                        edges.Add(new SymbolicEdge(s, d, position));
        }
        return new SymbolicCircuit("ioi-edges",
            "IOI edge circuit (Wang et al.'s 15 class connections expanded through the MLPs, AutoCircuit's ioi_true_edges): 869 edge-positions, 771 edges",
            GraphView.Factorized, separateQkv: true, edges);
    }

    /// <summary>
    /// A node circuit in the residual graph of <paramref name="config"/>: the listed heads kept (at a position, or at
    /// every position when null), every other head ablated, every non-head edge kept (spec 0.3, F.7).
    /// </summary>
    public static SymbolicCircuit NodeCircuit(string name, string description, TransformerConfig config, IEnumerable<(string Head, string? Position)> kept)
    {
        var graph = ComputationGraph.Residual(config);
        var edges = new List<SymbolicEdge>();
        var keptList = kept.ToList();
        foreach (var (head, _) in keptList)
            if (!graph.TryGetSource(head, out var s) || s.Kind != NodeKind.Head)
                throw new UnknownNodeException($"Node circuit '{name}': '{head}' is not a head of '{config.Name}'.");
        foreach (var e in graph.Edges.Where(e => e.Source.Kind != NodeKind.Head))
            edges.Add(new SymbolicEdge(e.Source.Name, e.Destination.Name, null));
        foreach (var (head, position) in keptList)
        {
            var edge = graph.EdgesFrom(graph.Source(head)).Single();
            edges.Add(new SymbolicEdge(head, edge.Destination.Name, position));
        }
        return new SymbolicCircuit(name, description, GraphView.Residual, separateQkv: false, edges);
    }

    static TransformerConfig ToyIoiConfig() =>
        HuggingFaceCheckpoint.ReadConfig(ConfigJson.Load(Path.Combine(ToyIoi.CheckpointFolder, "config.json")), ToyIoi.Alias);

    static TransformerConfig ToyDocstringConfig() =>
        TransformerLensCheckpoint.ReadConfig(ConfigJson.Load(Path.Combine(ToyDocstring.CheckpointFolder, "config.json")), ToyDocstring.Alias);

    static TransformerConfig ToySportsConfig() =>
        HuggingFaceCheckpoint.ReadConfig(ConfigJson.Load(Path.Combine(ToySports.CheckpointFolder, "config.json")), ToySports.Alias);

    /// <summary>
    /// The embedded toy IOI model's circuit (its model card's heads, each kept at the IOI position where it acts) as a
    /// node circuit: the workbook's own IOI circuit that runs with nothing downloaded.
    /// </summary>
    static OfficialCircuit ToyIoiNodes() => new("toy-ioi-nodes", "ioi", ToyIoiConfig(), ToyIoiBuild.NodeCircuit(ToyIoiConfig(), ToyIoi.Circuit));

    /// <summary>
    /// The edge circuit a node circuit induces in the factorized graph (Q/K/V separate): every edge whose two ends are
    /// kept — the embeddings, every MLP, the output and the listed heads. An edge out of a kept head lives at that
    /// head's positions; an edge into a kept head's query at the head's positions; edges into its key and value at every
    /// position (it reads them wherever it attends); edges between non-head nodes at every position, as node circuits
    /// keep them (spec F.7). A head may be listed at several positions (one entry per position).
    /// </summary>
    public static SymbolicCircuit InducedEdgeCircuit(string name, string description, TransformerConfig config, IEnumerable<(string Head, string? Position)> kept)
    {
        var graph = ComputationGraph.Factorized(config, separateQkv: true);
        var heads = kept.GroupBy(k => k.Head, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(k => k.Position).Distinct().ToArray(), StringComparer.Ordinal);
        foreach (var head in heads.Keys)
            if (!graph.TryGetSource(head, out var s) || s.Kind != NodeKind.Head)
                throw new UnknownNodeException($"Edge circuit '{name}': '{head}' is not a head of '{config.Name}'.");
        string HeadName(int layer, int head) => $"A{layer}.{head}";
        var edges = new List<SymbolicEdge>();
        foreach (var e in graph.Edges)
        {
            bool srcKept = e.Source.Kind != NodeKind.Head || heads.ContainsKey(e.Source.Name);
            bool destKept = e.Destination.Kind != NodeKind.Head || heads.ContainsKey(HeadName(e.Destination.Block, e.Destination.Head));
            if (!srcKept || !destKept) continue;
            string?[] positions = e.Source.Kind == NodeKind.Head ? heads[e.Source.Name]
                : e.Destination is { Kind: NodeKind.Head, Input: HeadInput.Q } ? heads[HeadName(e.Destination.Block, e.Destination.Head)]
                : new string?[] { null };
            edges.AddRange(positions.Select(p => new SymbolicEdge(e.Source.Name, e.Destination.Name, p)));
        }
        return new SymbolicCircuit(name, description, GraphView.Factorized, separateQkv: true, edges);
    }

    /// <summary>
    /// Every edge among the toy IOI circuit's heads, the embeddings, MLPs and output: the edge circuit its node circuit
    /// induces. Evaluated with edge ablation it gives exactly the node circuit's numbers (nothing between circuit nodes is
    /// ablated); <c>toy-ioi-edges</c> is the circuit discovery pruned from it.
    /// </summary>
    static OfficialCircuit ToyIoiEdgesInduced()
    {
        var nodes = ToyIoiNodes();
        var kept = nodes.Circuit.Edges.Where(e => e.Source.StartsWith('A') && e.Position is not null).Select(e => (e.Source, e.Position)).ToArray();
        var circuit = InducedEdgeCircuit("toy-ioi-edges-induced",
            $"edges among the toy IOI model's circuit heads ({string.Join(", ", kept.Select(k => $"{k.Source}@{k.Position}"))}), the embeddings, MLPs and output " +
            "(the edge circuit the node circuit induces; queries at the heads' positions, keys and values everywhere)",
            nodes.Model, kept);
        return new OfficialCircuit("toy-ioi-edges-induced", "ioi", nodes.Model, circuit);
    }

    // ------------------------------------------------------------------------------------------ Docstring (spec C.2)

    static SymbolicCircuit DocstringEdges()
    {
        var table = new (string Edge, string[] Positions)[]
        {
            ("A0.5->A1.4.V", new[] { "B_def", "B_doc" }),
            ("Resid Start->A0.5.V", new[] { "B_def", "C_def", "B_doc" }),
            ("Resid Start->A2.0.Q", new[] { "C_def" }),
            ("A0.5->A2.0.Q", new[] { "C_def" }),
            ("Resid Start->A2.0.K", Array.Empty<string>()),
            ("A0.5->A2.0.K", new[] { "B_def" }),
            ("A1.4->A2.0.V", new[] { ",_B" }),
            ("Resid Start->A1.4.V", new[] { "B_def", "B_doc" }),
            ("Resid Start->A1.2.K", new[] { "A_def", "B_def", "A_doc", "B_doc" }),
            ("Resid Start->A1.2.Q", new[] { "A_doc", "B_doc" }),
            ("A0.5->A1.2.Q", new[] { "B_doc" }),
            ("A0.5->A1.2.K", new[] { "B_def", "B_doc" }),
            ("A3.0->Resid End", new[] { "param_3" }),
            ("A3.6->Resid End", new[] { "param_3" }),
            ("A1.4->A3.0.Q", new[] { "param_3" }),
            ("A1.4->A3.6.Q", new[] { "param_3" }),
            ("Resid Start->A3.0.V", new[] { "C_def" }),
            ("Resid Start->A3.6.V", new[] { "C_def" }),
            ("A0.5->A3.0.V", new[] { "C_def" }),
            ("A0.5->A3.6.V", new[] { "C_def" }),
            ("A2.0->A3.0.K", new[] { "C_def" }),
            ("A2.0->A3.6.K", new[] { "C_def" }),
            ("A1.2->A3.0.K", new[] { "A_doc", "B_doc" }),
            ("A1.2->A3.6.K", new[] { "A_doc", "B_doc" }),
        };
        var edges = new List<SymbolicEdge>();
        foreach (var (edge, positions) in table)
        {
            var parts = edge.Split("->");
            if (positions.Length == 0) edges.Add(new SymbolicEdge(parts[0], parts[1], null, AllTokensOnly: true));
            edges.AddRange(positions.Select(p => new SymbolicEdge(parts[0], parts[1], p)));
        }
        return new SymbolicCircuit("docstring-edges",
            "Docstring edge circuit (ACDC's docstring_true_edges with AutoCircuit's positions): 34 edge-positions, 24 edges " +
            "(Resid Start->A2.0.K only in the all-tokens variant)",
            GraphView.Factorized, separateQkv: true, edges);
    }

    static SymbolicCircuit DocstringNodes()
    {
        var kept = new List<(string, string?)>
        {
            ("A1.4", ",_B"), ("A2.0", "C_def"), ("A3.0", "param_3"), ("A3.6", "param_3"),
            ("A0.5", "B_def"), ("A0.5", "C_def"), ("A0.5", "B_doc"),
            ("A1.2", "A_doc"), ("A1.2", "B_doc"), ("A0.2", "B_doc"), ("A0.4", "param_3"),
        };
        // "Extras for improved performance": every position from the first to the last labelled one (B_def..param_3).
        foreach (var head in new[] { "A1.0", "A0.1", "A2.3" }) kept.Add((head, "B_def..param_3"));
        return NodeCircuit("docstring-nodes",
            "Docstring node circuit (Heimersheim & Janiak's heads at their positions, plus A1.0, A0.1, A2.3 from B_def to param_3)",
            KnownConfigs.AttnOnly4L, kept);
    }

    // ------------------------------------------------------------------------------------- Sports Players (spec C.3)

    static SymbolicCircuit SportsPlayers()
    {
        var config = KnownConfigs.Pythia28B;
        var graph = ComputationGraph.Factorized(config, separateQkv: false);
        var heads01 = Enumerable.Range(0, 2).SelectMany(b => Enumerable.Range(0, config.NHeads).Select(h => $"A{b}.{h}")).ToList();
        var edges = new List<SymbolicEdge>();

        void AllAmong(IReadOnlyCollection<string> nodes, string position)
        {
            foreach (var src in graph.Sources.Where(s => nodes.Contains(s.Name)))
                foreach (var dest in graph.Destinations.Where(d => nodes.Contains(d.Name)))
                    if (graph.FindEdge(src, dest) is not null) edges.Add(new SymbolicEdge(src.Name, dest.Name, position));
        }

        // 1. The non-final name tokens: everything among the embedding, MLP 0 and the heads of blocks 0-1.
        var early = new HashSet<string>(heads01) { "Resid Start", "MLP 0" };
        AllAmong(early, "first_name_tok");
        AllAmong(early, "first_name_tok+1");
        // 2. The final name token: the embedding, blocks 0-1 heads and MLPs 0-15 among themselves, all of them into
        //    A16.20, and A16.20 into the heads that move the sport to the end.
        var lookup = new HashSet<string>(heads01) { "Resid Start" };
        lookup.UnionWith(Enumerable.Range(0, 16).Select(l => $"MLP {l}"));
        AllAmong(lookup, "final_name_tok");
        foreach (var s in graph.Sources.Where(s => lookup.Contains(s.Name)))
            edges.Add(new SymbolicEdge(s.Name, "A16.20", "final_name_tok"));
        var movers = new[] { "A21.9", "A22.17", "A22.15", "A17.30", "A19.24" };
        edges.AddRange(movers.Select(m => new SymbolicEdge("A16.20", m, "final_name_tok")));
        // 3. The end token: the sport-moving heads into the output.
        edges.AddRange(movers.Prepend("A16.20").Select(h => new SymbolicEdge(h, "Resid End", "end")));
        return new SymbolicCircuit("sports-players",
            "Sports Players circuit (Nanda et al.'s fact lookup, AutoCircuit's sports_players_true_edges): 4,518 edge-positions",
            GraphView.Factorized, separateQkv: false, edges);
    }
}
