using Workbook.Graph;

namespace Workbook.Circuits;

/// <summary>An edge of a circuit, at one token position or (Position = null) at every position.</summary>
public readonly record struct CircuitEdge(Edge Edge, int? Position)
{
    public string Name => Position is int p ? $"{Edge.Name}@{p}" : Edge.Name;
    public override string ToString() => Name;
}

/// <summary>
/// An immutable set of edges of one <see cref="ComputationGraph"/>, each at a token position or at all positions.
/// An edge without a position covers every position, so <c>A->B</c> ∪ <c>A->B@3</c> = <c>A->B</c>.
/// Names print and parse in AutoCircuit's style: <c>A0.1->A1.2.Q</c>, <c>A0.1->A1.2.Q@5</c>.
/// Stored as a sorted array of (edge index, position) keys so that set operations on millions of
/// positional edges (Pythia: 542,257 edges × 7 positions) stay cheap.
/// </summary>
public sealed class Circuit
{
    // key = edgeIndex << 32 | (position + 1); position null -> 0. Sorted, unique, normalised (no positional key
    // for an edge that also has the all-positions key).
    readonly long[] _keys;

    public ComputationGraph Graph { get; }
    public int Count => _keys.Length;
    public bool IsEmpty => _keys.Length == 0;

    /// <summary>True when at least one edge is restricted to a token position.</summary>
    public bool IsPositional { get; }

    Circuit(ComputationGraph graph, long[] sortedUniqueKeys)
    {
        Graph = graph;
        _keys = Normalise(sortedUniqueKeys);
        IsPositional = _keys.Any(k => (int)(k & 0xffffffff) != 0);
    }

    static long Key(int edge, int? position)
    {
        if (position is < 0) throw new ArgumentOutOfRangeException(nameof(position), $"Token position {position} must not be negative.");
        return (long)edge << 32 | (uint)((position ?? -1) + 1);
    }

    static int EdgeOf(long key) => (int)(key >> 32);
    static int? PositionOf(long key) => (int)(key & 0xffffffff) is var p && p == 0 ? null : p - 1;

    static long[] Normalise(long[] keys)
    {
        var result = new List<long>(keys.Length);
        int lastAllEdge = -1;
        foreach (var k in keys)
        {
            int e = EdgeOf(k);
            if (PositionOf(k) is null) lastAllEdge = e;
            else if (lastAllEdge == e) continue; // covered by the all-positions entry, which sorts first
            result.Add(k);
        }
        return result.Count == keys.Length ? keys : result.ToArray();
    }

    public static Circuit Empty(ComputationGraph graph) => new(graph, Array.Empty<long>());

    public static Circuit From(ComputationGraph graph, IEnumerable<CircuitEdge> edges)
    {
        var keys = new List<long>();
        foreach (var e in edges)
        {
            if (!ReferenceEquals(graph.Edges[e.Edge.Index], e.Edge) && graph.Edges[e.Edge.Index].Name != e.Edge.Name)
                throw new ArgumentException($"Edge {e.Edge.Name} does not belong to the {graph.Describe()}.");
            keys.Add(Key(e.Edge.Index, e.Position));
        }
        var arr = keys.ToArray();
        Array.Sort(arr);
        return new Circuit(graph, Dedupe(arr));
    }

    /// <summary>Every edge of the graph, at every position (no positions) or at each of <paramref name="seqLen"/> positions.</summary>
    public static Circuit All(ComputationGraph graph, int? seqLen = null)
    {
        if (seqLen is null) return new Circuit(graph, Enumerable.Range(0, graph.EdgeCount).Select(e => Key(e, null)).ToArray());
        var keys = new long[(long)graph.EdgeCount * seqLen.Value];
        int k = 0;
        for (int e = 0; e < graph.EdgeCount; e++)
            for (int p = 0; p < seqLen.Value; p++) keys[k++] = Key(e, p);
        return new Circuit(graph, keys);
    }

    static long[] Dedupe(long[] sorted)
    {
        if (sorted.Length < 2) return sorted;
        int w = 1;
        for (int i = 1; i < sorted.Length; i++)
            if (sorted[i] != sorted[w - 1]) sorted[w++] = sorted[i];
        return w == sorted.Length ? sorted : sorted[..w];
    }

    public IEnumerable<CircuitEdge> Edges
    {
        get
        {
            foreach (var k in _keys) yield return new CircuitEdge(Graph.Edges[EdgeOf(k)], PositionOf(k));
        }
    }

    /// <summary>Distinct edges regardless of position.</summary>
    public IReadOnlyList<Edge> DistinctEdges() => _keys.Select(EdgeOf).Distinct().Select(i => Graph.Edges[i]).ToList();

    /// <summary>Whether the circuit holds <paramref name="edge"/> at <paramref name="position"/> (null: at every position).</summary>
    public bool Contains(Edge edge, int? position = null)
    {
        if (Array.BinarySearch(_keys, Key(edge.Index, null)) >= 0) return true;
        return position is int p && Array.BinarySearch(_keys, Key(edge.Index, p)) >= 0;
    }

    /// <summary>Positions at which <paramref name="edge"/> is in the circuit: null = all, empty = none.</summary>
    public IReadOnlyList<int>? PositionsOf(Edge edge)
    {
        long lo = Key(edge.Index, null);
        int i = Array.BinarySearch(_keys, lo);
        if (i >= 0) return null;
        i = ~i;
        var result = new List<int>();
        for (; i < _keys.Length && EdgeOf(_keys[i]) == edge.Index; i++) result.Add(PositionOf(_keys[i])!.Value);
        return result;
    }

    void SameGraph(Circuit other)
    {
        if (other.Graph.View != Graph.View || other.Graph.EdgeCount != Graph.EdgeCount || other.Graph.Config.Name != Graph.Config.Name)
            throw new ArgumentException($"Circuits belong to different graphs: {Graph.Describe()} vs {other.Graph.Describe()}.");
    }

    public Circuit Union(Circuit other)
    {
        SameGraph(other);
        var merged = new long[_keys.Length + other._keys.Length];
        _keys.CopyTo(merged, 0);
        other._keys.CopyTo(merged, _keys.Length);
        Array.Sort(merged);
        return new Circuit(Graph, Dedupe(merged));
    }

    /// <summary>Edge-positions in both circuits (an all-positions edge meets a positional one at that position).</summary>
    public Circuit Intersect(Circuit other)
    {
        SameGraph(other);
        var result = new List<CircuitEdge>();
        foreach (var e in Edges)
        {
            if (e.Position is null)
            {
                var positions = other.PositionsOf(e.Edge);
                if (positions is null) result.Add(e);
                else result.AddRange(positions.Select(p => new CircuitEdge(e.Edge, p)));
            }
            else if (other.Contains(e.Edge, e.Position)) result.Add(e);
        }
        return From(Graph, result);
    }

    /// <summary>
    /// Every edge (at every position, for positional circuits given <paramref name="seqLen"/>) not in this circuit.
    /// Positional circuits need the sequence length; name-only circuits return name-only complements.
    /// </summary>
    public Circuit Complement(int? seqLen = null)
    {
        if (IsPositional && seqLen is null)
            throw new ArgumentException("The complement of a positional circuit needs the sequence length.");
        if (seqLen is null)
        {
            var present = new HashSet<int>(_keys.Select(EdgeOf));
            return new Circuit(Graph, Enumerable.Range(0, Graph.EdgeCount).Where(e => !present.Contains(e)).Select(e => Key(e, null)).ToArray());
        }
        var keys = new List<long>();
        int k = 0;
        for (int e = 0; e < Graph.EdgeCount; e++)
        {
            bool all = false;
            var positions = new HashSet<int>();
            for (; k < _keys.Length && EdgeOf(_keys[k]) == e; k++)
            {
                if (PositionOf(_keys[k]) is int p) positions.Add(p);
                else all = true;
            }
            if (all) continue;
            for (int p = 0; p < seqLen.Value; p++)
                if (!positions.Contains(p)) keys.Add(Key(e, p));
        }
        return new Circuit(Graph, keys.ToArray());
    }

    /// <summary>Edges of this circuit not covered by <paramref name="other"/> (positions expanded with <paramref name="seqLen"/> when needed).</summary>
    public Circuit Except(Circuit other, int? seqLen = null) => Intersect(other.Complement(seqLen ?? (other.IsPositional || IsPositional ? MaxPosition() + 1 : null)));

    int MaxPosition() => _keys.Select(PositionOf).Where(p => p.HasValue).Select(p => p!.Value).DefaultIfEmpty(0).Max();

    /// <summary>The circuit with every position dropped (the "All Toks" variant of a token-specific circuit).</summary>
    public Circuit WithoutPositions() => new(Graph, Dedupe(_keys.Select(k => Key(EdgeOf(k), null)).Distinct().OrderBy(k => k).ToArray()));

    /// <summary>One line per edge in AutoCircuit style.</summary>
    public IEnumerable<string> ToLines() => Edges.Select(e => e.Name);

    /// <summary>Parses lines like <c>A0.1->A1.2.Q</c> or <c>A0.1->A1.2.Q@5</c>; unknown names are errors with suggestions.</summary>
    public static Circuit Parse(ComputationGraph graph, IEnumerable<string> lines)
    {
        var edges = new List<CircuitEdge>();
        int lineNo = 0;
        foreach (var raw in lines)
        {
            lineNo++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            edges.Add(ParseEdge(graph, line, $"line {lineNo}"));
        }
        return From(graph, edges);
    }

    /// <summary>Parses one edge name, optionally with <c>@position</c>.</summary>
    public static CircuitEdge ParseEdge(ComputationGraph graph, string text, string where = "edge")
    {
        int at = text.LastIndexOf('@');
        int? position = null;
        string name = text;
        if (at >= 0)
        {
            if (!int.TryParse(text.AsSpan(at + 1), out int p) || p < 0)
                throw new FormatException($"{where}: '{text}' has position '{text[(at + 1)..]}', which is not a non-negative integer.");
            position = p;
            name = text[..at];
        }
        int arrow = name.IndexOf("->", StringComparison.Ordinal);
        if (arrow <= 0 || arrow + 2 >= name.Length)
            throw new FormatException($"{where}: '{text}' is not an edge name of the form 'SRC->DEST' (e.g. 'A0.1->A1.2.Q').");
        try
        {
            return new CircuitEdge(graph.Edge(name[..arrow].Trim(), name[(arrow + 2)..].Trim()), position);
        }
        catch (UnknownNodeException e)
        {
            throw new UnknownNodeException($"{where}: {e.Message}");
        }
    }

    public override string ToString() => $"Circuit of {Count} edge{(Count == 1 ? "" : "s")}{(IsPositional ? " (token-specific)" : "")} in the {Graph.Describe()}";
}
