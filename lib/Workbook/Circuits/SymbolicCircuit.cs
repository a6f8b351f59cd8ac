using Workbook.Graph;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Circuits;

/// <summary>
/// One edge of a <see cref="SymbolicCircuit"/>: node names and a position expression resolved per dataset
/// (<c>S2</c>, <c>S1+1</c>, <c>B_def..param_3</c>, or an integer token index); null = every position.
/// <see cref="AllTokensOnly"/> marks an edge that belongs to the all-positions variant only (the Docstring
/// <c>Resid Start->A2.0.K</c> quirk, spec C.2 and F.9).
/// </summary>
public sealed record SymbolicEdge(string Source, string Destination, string? Position, bool AllTokensOnly = false)
{
    public string Name => $"{Source}->{Destination}";
    public override string ToString() => AllTokensOnly ? $"{Name} (all-tokens variant only)" : Position is null ? Name : $"{Name} @ {Position}";
}

/// <summary>
/// A circuit defined by names and position labels, before it meets a dataset: official circuits (spec C) and
/// circuit files. <see cref="Resolve"/> turns it into a <see cref="Circuit"/> of a concrete
/// <see cref="ComputationGraph"/>, with the positions of one dataset, in the token-specific or all-tokens variant.
/// </summary>
public sealed class SymbolicCircuit
{
    public string Name { get; }
    public string Description { get; }
    /// <summary>The graph view the names refer to: factorized (edge circuits) or residual (node circuits).</summary>
    public GraphView View { get; }
    /// <summary>For factorized circuits: whether head destinations are split into Q, K and V.</summary>
    public bool SeparateQkv { get; }
    public IReadOnlyList<SymbolicEdge> Edges { get; }

    public SymbolicCircuit(string name, string description, GraphView view, bool separateQkv, IEnumerable<SymbolicEdge> edges)
    {
        Name = name;
        Description = description;
        View = view;
        SeparateQkv = view == GraphView.Factorized && separateQkv;
        Edges = edges.ToArray();
    }

    /// <summary>A concrete circuit as a symbolic one (positions become absolute token indices).</summary>
    public static SymbolicCircuit FromCircuit(string name, Circuit circuit, string? description = null) =>
        new(name, description ?? circuit.ToString(), circuit.Graph.View, circuit.Graph.SeparateQkv,
            circuit.Edges.Select(e => new SymbolicEdge(e.Edge.Source.Name, e.Edge.Destination.Name,
                e.Position?.ToString(System.Globalization.CultureInfo.InvariantCulture))));

    /// <summary>Every edge of <paramref name="graph"/> at every position: the whole model as a "circuit".</summary>
    public static SymbolicCircuit WholeModel(ComputationGraph graph) => FromCircuit("whole-model", Circuit.All(graph), $"every edge of the {graph.Describe()}");

    public Component Component => View == GraphView.Residual ? Component.Node : Component.Edge;

    /// <summary>Whether any edge is tied to token positions (otherwise both variants are the same circuit).</summary>
    public bool HasPositions => Edges.Any(e => e.Position is not null || e.AllTokensOnly);

    /// <summary>Distinct edge names (the all-tokens variant).</summary>
    public int DistinctEdgeCount => Edges.Select(e => e.Name).Distinct().Count();

    /// <summary>
    /// The circuit as edges of <paramref name="graph"/>. <see cref="TokenPositions.All"/>: every edge name at every
    /// position. <see cref="TokenPositions.Specific"/>: each edge at the positions its expression names in
    /// <paramref name="positions"/> (token coordinates, BOS included), edges without a position at every position,
    /// all-tokens-only edges left out. Unknown node names and unknown labels are errors.
    /// </summary>
    public Circuit Resolve(ComputationGraph graph, WordPositions positions, TokenPositions mode)
    {
        CheckGraph(graph);
        var result = new List<CircuitEdge>(Edges.Count);
        foreach (var e in Edges)
        {
            Edge edge;
            try
            {
                edge = graph.Edge(e.Source, e.Destination);
            }
            catch (UnknownNodeException ex)
            {
                throw new UnknownNodeException($"Circuit '{Name}', edge {e.Name}: {ex.Message}");
            }
            if (mode == TokenPositions.All || e.Position is null)
            {
                if (mode == TokenPositions.Specific && e.AllTokensOnly) continue;
                result.Add(new CircuitEdge(edge, null));
                continue;
            }
            if (e.AllTokensOnly) continue;
            IReadOnlyList<int> resolved;
            try
            {
                resolved = ResolvePosition(e.Position, positions);
            }
            catch (Exception ex) when (ex is KeyNotFoundException or ArgumentException or FormatException)
            {
                throw new ArgumentException($"Circuit '{Name}', edge {e.Name} @ {e.Position}: {ex.Message}", ex);
            }
            foreach (int p in resolved) result.Add(new CircuitEdge(edge, p));
        }
        return Circuit.From(graph, result);
    }

    static IReadOnlyList<int> ResolvePosition(string expression, WordPositions positions) =>
        int.TryParse(expression, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p)
            ? new[] { p }
            : positions.Resolve(expression);

    /// <summary>Checks that <paramref name="graph"/> is the view this circuit's names refer to.</summary>
    public void CheckGraph(ComputationGraph graph)
    {
        if (graph.View != View)
            throw new ArgumentException(
                $"Circuit '{Name}' is a {(View == GraphView.Residual ? "node circuit (residual graph)" : "edge circuit (factorized graph)")}, " +
                $"but the graph is the {graph.Describe()}.");
        if (View == GraphView.Factorized && graph.SeparateQkv != SeparateQkv)
            throw new ArgumentException(
                $"Circuit '{Name}' names head destinations {(SeparateQkv ? "split into Q, K and V" : "without a Q/K/V split")}, but the graph is the {graph.Describe()}.");
    }

    public override string ToString() => $"{Name}: {Edges.Count} entries ({DistinctEdgeCount} distinct edges), {(View == GraphView.Residual ? "node" : "edge")} circuit";
}
