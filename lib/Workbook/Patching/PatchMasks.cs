using TorchSharp;
using Workbook.Circuits;
using Workbook.Graph;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// Which edges a forward pass patches, as one mask per <see cref="PatchSite"/>: [batch or 1, seq or 1, rows, sources]
/// where rows are the site's destinations and sources its incoming source range. 1 = patch the edge (the destination
/// reads the patch value instead of the source's current output), 0 = keep it; values in between interpolate, and
/// masks may require gradients (attribution, learned circuits). A null site mask means nothing is patched there.
/// </summary>
public sealed class PatchMasks : IDisposable
{
    readonly (int Site, int Row)[] _destSlot;
    bool[]? _sourcePatched;

    public ComputationGraph Graph { get; }
    public IReadOnlyList<PatchSite> Sites { get; }
    public Tensor?[] Masks { get; }

    PatchMasks(ComputationGraph graph, IReadOnlyList<PatchSite> sites, Tensor?[] masks)
    {
        Graph = graph;
        Sites = sites;
        Masks = masks;
        _destSlot = new (int, int)[graph.Destinations.Count];
        for (int s = 0; s < sites.Count; s++)
            for (int r = 0; r < sites[s].Destinations.Count; r++)
                _destSlot[sites[s].Destinations[r].Index] = (s, r);
    }

    /// <summary>Site index and row of a destination.</summary>
    public (int Site, int Row) SlotOf(DestinationNode d) => _destSlot[d.Index];

    /// <summary>
    /// The mask entries of one edge, a view [batch or 1, seq or 1] into its site's mask (null when that site patches
    /// nothing). Writing to it changes the mask; after a backward pass its gradient is the edge's attribution.
    /// </summary>
    public Tensor? EdgeView(Edge edge)
    {
        var (s, row) = SlotOf(edge.Destination);
        var m = Masks[s];
        return m?[.., .., row, edge.Source.Index - Sites[s].FirstSource];
    }

    /// <summary>Masks that patch nothing.</summary>
    public static PatchMasks None(ComputationGraph graph) =>
        new(graph, PatchSite.For(graph), new Tensor?[PatchSite.For(graph).Count]);

    /// <summary>
    /// Dense masks filled with <paramref name="value"/> at every site, shaped [batch ?? 1, seqLen ?? 1, rows, sources];
    /// with <paramref name="requiresGrad"/> they are leaves for attribution or training.
    /// </summary>
    public static PatchMasks Filled(ComputationGraph graph, double value, int? seqLen = null, int? batch = null, bool requiresGrad = false, Device? device = null)
    {
        var sites = PatchSite.For(graph);
        var masks = sites.Select(s => (Tensor?)Model.TensorMath.Full(new long[] { batch ?? 1, seqLen ?? 1, s.Rows, s.SourceCount }, value, ScalarType.Float32, device ?? CPU)
            .requires_grad_(requiresGrad).DetachFromDisposeScope()).ToArray();
        return new PatchMasks(graph, sites, masks);
    }

    /// <summary>
    /// Masks computed elsewhere, one per site (null: nothing patched there), each [batch or 1, seq or 1, rows, sources]:
    /// e.g. masks sampled from learned logits (subnetwork probing), which stay part of the caller's autograd graph.
    /// The masks dispose with the tensors' own scope, not with this object.
    /// </summary>
    public static PatchMasks FromTensors(ComputationGraph graph, IReadOnlyList<Tensor?> perSite)
    {
        var sites = PatchSite.For(graph);
        if (perSite.Count != sites.Count)
            throw new ArgumentException($"Expected one mask per site ({sites.Count} sites in the {graph.Describe()}), got {perSite.Count}.");
        for (int s = 0; s < sites.Count; s++)
        {
            if (perSite[s] is not { } m) continue;
            if (m.dim() != 4 || m.shape[2] != sites[s].Rows || m.shape[3] != sites[s].SourceCount)
                throw new ArgumentException($"The mask of site {s} ({sites[s].Destinations[0].Name}...) must be [batch or 1, seq or 1, {sites[s].Rows}, {sites[s].SourceCount}]; got [{string.Join(", ", m.shape)}].");
        }
        return new PatchMasks(graph, sites, perSite.ToArray()) { _borrowed = true };
    }

    bool _borrowed;

    /// <summary>Masks that patch exactly the given edges (each at its position, or everywhere when it has none).</summary>
    public static PatchMasks ForEdges(ComputationGraph graph, IEnumerable<CircuitEdge> edges, int seqLen, int neverPatchedPrefix = 0, Device? device = null)
    {
        var builder = new Builder(graph, seqLen, baseValue: 0f);
        foreach (var e in edges) builder.Set(e, 1f);
        return builder.Build(neverPatchedPrefix, device);
    }

    /// <summary>
    /// Masks for evaluating <paramref name="circuit"/> under <paramref name="methodology"/>: patch the circuit's
    /// complement (or the circuit), at the circuit's positions (Specific) or at every position (All), never before
    /// <paramref name="neverPatchedPrefix"/>.
    /// </summary>
    public static PatchMasks ForCircuit(Circuit circuit, Methodology methodology, int seqLen, int neverPatchedPrefix = 0, Device? device = null)
    {
        var graph = circuit.Graph;
        if (graph.View != methodology.View)
            throw new ArgumentException($"The methodology ablates {methodology.Component.ToString().ToLowerInvariant()}s but the circuit belongs to the {graph.Describe()}; use a {(methodology.View == GraphView.Factorized ? "factorized (edge)" : "residual (node)")} circuit.");
        if (graph.View == GraphView.Factorized && graph.SeparateQkv != methodology.SeparateQkv)
            throw new ArgumentException($"The methodology's granularity ({methodology.Granularity}) does not match the circuit's graph ({graph.Describe()}).");
        var source = methodology.Positions == TokenPositions.All ? circuit.WithoutPositions() : circuit;
        if (source.Edges.Any(e => e.Position >= seqLen))
            throw new ArgumentException($"The circuit names token position {source.Edges.Max(e => e.Position)} but the prompts have {seqLen} tokens.");
        bool complement = methodology.Ablate == AblatedSet.Complement;
        var builder = new Builder(graph, seqLen, baseValue: complement ? 1f : 0f);
        foreach (var e in source.Edges) builder.Set(e, complement ? 0f : 1f);
        return builder.Build(neverPatchedPrefix, device);
    }

    /// <summary>Per source: does any mask entry read it? (All true when masks require gradients.)</summary>
    public bool[] SourcePatched()
    {
        if (_sourcePatched != null) return _sourcePatched;
        var patched = new bool[Graph.Sources.Count];
        for (int s = 0; s < Sites.Count; s++)
        {
            var m = Masks[s];
            if (m is null) continue;
            var site = Sites[s];
            if (m.requires_grad)
            {
                for (int c = 0; c < site.SourceCount; c++) patched[site.FirstSource + c] = true;
                continue;
            }
            using var any = m.detach().abs().sum(new long[] { 0, 1, 2 }).gt(0).cpu();
            var flags = any.data<bool>().ToArray();
            for (int c = 0; c < flags.Length; c++) patched[site.FirstSource + c] |= flags[c];
        }
        return _sourcePatched = patched;
    }

    public void Dispose()
    {
        for (int i = 0; i < Masks.Length; i++)
        {
            if (!_borrowed) Masks[i]?.Dispose();
            Masks[i] = null;
        }
    }

    /// <summary>Fills CPU float arrays per site, then uploads once.</summary>
    sealed class Builder
    {
        readonly ComputationGraph _graph;
        readonly IReadOnlyList<PatchSite> _sites;
        readonly int _seqLen;
        readonly float _base;
        readonly float[]?[] _perPosition; // [T * rows * src] when some edge is positional
        readonly float[][] _allPositions; // [rows * src]
        readonly PatchMasks _slots;

        public Builder(ComputationGraph graph, int seqLen, float baseValue)
        {
            if (seqLen < 1) throw new ArgumentException($"Sequence length must be positive, got {seqLen}.");
            _graph = graph;
            _slots = None(graph);
            _sites = _slots.Sites;
            _seqLen = seqLen;
            _base = baseValue;
            _perPosition = new float[_sites.Count][];
            _allPositions = _sites.Select(s => Filled(s.Rows * s.SourceCount, baseValue)).ToArray();
        }

        static float[] Filled(int n, float v)
        {
            var a = new float[n];
            if (v != 0) Array.Fill(a, v);
            return a;
        }

        public void Set(CircuitEdge e, float value)
        {
            var (s, row) = _slots.SlotOf(e.Edge.Destination);
            var site = _sites[s];
            int col = e.Edge.Source.Index - site.FirstSource;
            if (col < 0 || col >= site.SourceCount) throw new InvalidOperationException($"Edge {e.Edge.Name} is outside its site.");
            int width = site.Rows * site.SourceCount, offset = row * site.SourceCount + col;
            if (e.Position is int p)
            {
                if (p >= _seqLen) throw new ArgumentException($"Edge {e.Name}: position {p} is beyond the {_seqLen}-token prompts.");
                var arr = _perPosition[s] ??= Expand(_allPositions[s], _seqLen);
                arr[p * width + offset] = value;
            }
            else
            {
                _allPositions[s][offset] = value;
                if (_perPosition[s] is { } arr)
                    for (int t = 0; t < _seqLen; t++) arr[t * width + offset] = value;
            }
        }

        static float[] Expand(float[] all, int seqLen)
        {
            var arr = new float[all.Length * seqLen];
            for (int t = 0; t < seqLen; t++) Array.Copy(all, 0, arr, t * all.Length, all.Length);
            return arr;
        }

        public PatchMasks Build(int prefix, Device? device)
        {
            if (prefix < 0 || prefix >= _seqLen && prefix != 0)
                throw new ArgumentException($"The never-patched prefix ({prefix}) must be within the {_seqLen}-token prompts.");
            var masks = new Tensor?[_sites.Count];
            for (int s = 0; s < _sites.Count; s++)
            {
                var site = _sites[s];
                int width = site.Rows * site.SourceCount;
                float[] data;
                int tm;
                if (_perPosition[s] is { } per) { data = per; tm = _seqLen; }
                else if (prefix > 0) { data = Expand(_allPositions[s], _seqLen); tm = _seqLen; }
                else { data = _allPositions[s]; tm = 1; }
                if (prefix > 0) Array.Clear(data, 0, prefix * width);
                if (Array.TrueForAll(data, v => v == 0)) continue;
                masks[s] = tensor(data, new long[] { 1, tm, site.Rows, site.SourceCount }, dtype: ScalarType.Float32)
                    .to(device ?? CPU).DetachFromDisposeScope();
            }
            return new PatchMasks(_graph, _sites, masks);
        }
    }
}
