using Workbook.Circuits;
using Workbook.Patching;

namespace Workbook.Evaluation;

/// <summary>
/// The circuit an evaluation uses, per component: an official circuit, an official family (node and edge variants
/// of one circuit, e.g. "ioi"), or a circuit file (one component only).
/// </summary>
public sealed class CircuitChoice
{
    readonly SymbolicCircuit? _nodes;
    readonly SymbolicCircuit? _edges;

    public string Name { get; }

    CircuitChoice(string name, SymbolicCircuit? nodes, SymbolicCircuit? edges)
    {
        Name = name;
        _nodes = nodes;
        _edges = edges;
    }

    public static CircuitChoice Of(SymbolicCircuit circuit, string? name = null) =>
        circuit.Component == Component.Node ? new(name ?? circuit.Name, circuit, null) : new(name ?? circuit.Name, null, circuit);

    public static CircuitChoice Family(string name, SymbolicCircuit nodes, SymbolicCircuit edges) => new(name, nodes, edges);

    /// <summary>An official circuit or family name, or else a path to a circuit JSON file.</summary>
    public static CircuitChoice Parse(string nameOrFile)
    {
        if (OfficialCircuits.Families.TryGetValue(nameOrFile, out var family))
            return Family(nameOrFile, OfficialCircuits.Get(family.Nodes).Circuit, OfficialCircuits.Get(family.Edges).Circuit);
        if (OfficialCircuits.Exists(nameOrFile)) return Of(OfficialCircuits.Get(nameOrFile).Circuit);
        if (File.Exists(nameOrFile)) return Of(SymbolicCircuitJson.ReadFile(nameOrFile));
        if (nameOrFile.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            throw new FileNotFoundException($"Circuit file '{nameOrFile}' does not exist.", nameOrFile);
        OfficialCircuits.Get(nameOrFile); // throws with near-match suggestions
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>The components this choice can be evaluated with.</summary>
    public IReadOnlyList<Component> Components =>
        new[] { (Component.Node, _nodes), (Component.Edge, _edges) }.Where(c => c.Item2 is not null).Select(c => c.Item1).ToArray();

    /// <summary>The circuit for <paramref name="component"/>; an error that says which component is available otherwise.</summary>
    public SymbolicCircuit For(Component component) => (component == Component.Node ? _nodes : _edges)
        ?? throw new ArgumentException(
            $"Circuit '{Name}' is {(_nodes is not null ? "a node" : "an edge")} circuit, so it cannot be evaluated with {component.ToString().ToLowerInvariant()} ablation" +
            $"{(OfficialCircuits.Families.FirstOrDefault(f => f.Value.Nodes == Name || f.Value.Edges == Name).Key is string fam ? $"; use '{fam}' for both variants" : "")}.");

    /// <summary>Whether the circuit names token positions (otherwise "specific" and "all" positions are the same circuit).</summary>
    public bool HasPositions => (_nodes?.HasPositions ?? false) || (_edges?.HasPositions ?? false);

    /// <summary>The granularity matching the edge circuit's graph (Q/K/V split or heads).</summary>
    public Granularity EdgeGranularity => _edges is { SeparateQkv: false } ? Granularity.Heads : Granularity.QkvSeparate;
}
