using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// The patching equation on the residual (node) graph: each residual node (Resid Mid, Resid Post, Resid End)
/// takes <c>value + Σ_src mask · (patch[src] − current[src])</c> over its incoming sources. Patching a head's
/// single out-edge replaces its contribution for everything downstream: node ablation. A head patched at every
/// position (mask 1 throughout its column, e.g. every head outside an ablated circuit's complement) is not computed at
/// all: its patch value takes its place in the attention output (<see cref="IForwardInterceptor.ReplacedHeads"/>).
/// </summary>
internal sealed class NodePatcher : IForwardInterceptor, IReplacesHeads
{
    readonly PatchMasks _masks;
    readonly Tensor? _values;
    readonly SourceIndex _index;
    readonly bool[] _needed;
    readonly Tensor?[] _current;
    readonly int[] _midSite, _postSite;
    readonly ReplacedHeadPlan _replaced;

    /// <param name="device">Where the forward pass runs (the model's device), for the head indices.</param>
    /// <param name="replaceHeads">Whether heads patched everywhere may go uncomputed (false when hooks or a cache observe the pass).</param>
    public NodePatcher(PatchMasks masks, PatchValues values, Device device, bool replaceHeads = true)
    {
        _masks = masks;
        _values = values.Values;
        var graph = masks.Graph;
        _index = new SourceIndex(graph);
        _needed = (bool[])masks.SourcePatched().Clone(); // the masks' own copy is shared: replaced heads are cleared below
        _current = new Tensor?[graph.Sources.Count];
        int L = graph.Config.NLayers;
        _midSite = Enumerable.Repeat(-1, L).ToArray();
        _postSite = Enumerable.Repeat(-1, L).ToArray();
        for (int i = 0; i < masks.Sites.Count; i++)
        {
            var s = masks.Sites[i];
            if (s.Kind == SiteKind.ResidMid) _midSite[s.Block] = i;
            else _postSite[s.Block] = i; // Resid Post b, or Resid End for the last block
        }
        _replaced = replaceHeads ? ReplacedHeadPlan.From(graph, PatchedEverywhere(), heads =>
        {
            // In the caller's dispose scope (Patcher.Run's), which outlives the forward pass.
            var t = tensor(heads, device: device);
            return () => t;
        }) : ReplacedHeadPlan.None(graph);
        for (int s = 0; s < _needed.Length; s++) _needed[s] &= !_replaced.IsReplaced(s);
    }

    /// <summary>
    /// Per source: does every site that reads it patch it at every prompt, position and row, with a mask that needs no
    /// gradient? One transfer for all sites (on a GPU each would wait for the queue).
    /// </summary>
    bool[] PatchedEverywhere()
    {
        var flagged = Enumerable.Range(0, _masks.Sites.Count).Where(i => _masks.Masks[i] is { requires_grad: false }).ToArray();
        var ones = new bool[_masks.Sites.Count][];
        if (flagged.Length > 0)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var all = cat(flagged.Select(i => _masks.Masks[i]!.eq(1).flatten(0, 2).all(0)).ToArray()).cpu().data<bool>().ToArray();
            int offset = 0;
            foreach (int i in flagged)
            {
                ones[i] = all.AsSpan(offset, _masks.Sites[i].SourceCount).ToArray();
                offset += _masks.Sites[i].SourceCount;
            }
        }
        return ReplacedHeadPlan.PatchedEverywhere(_masks.Sites, ones, _masks.Graph.Sources.Count);
    }

    public void OnSource(SourceSite site, int layer, Tensor value)
    {
        switch (site)
        {
            case SourceSite.BlockInput: _current[_index.BlockInput[layer]] = value; break;
            case SourceSite.ResidMid: _current[_index.ResidMid[layer]] = value; break;
            case SourceSite.MlpOut when _index.Mlp[layer] >= 0: _current[_index.Mlp[layer]] = value; break;
            case SourceSite.HeadResults:
                int first = _index.FirstHead[layer];
                var computed = _replaced.ComputedHeads(layer);
                for (int h = 0; h < value.shape[0]; h++) _current[first + (int)(computed?[h] ?? h)] = value[h];
                break;
        }
    }

    public bool NeedsHeadResults(int layer)
    {
        int first = _index.FirstHead[layer];
        for (int h = 0; h < _masks.Graph.Config.NHeads; h++)
            if (_needed[first + h]) return true;
        return false;
    }

    /// <summary>The heads block <paramref name="layer"/> computes when some are replaced, or null when it computes all.</summary>
    public IReadOnlyList<long>? ComputedHeads(int layer) => _replaced.ComputedHeads(layer);

    public HeadReplacement? ReplacedHeads(int layer, Tensor residPre) => _replaced.For(layer, _values, residPre);

    public Tensor? Destination(DestinationSite site, int layer, Tensor current) => site switch
    {
        DestinationSite.ResidMid => Patch(_midSite[layer], current),
        DestinationSite.ResidPost => Patch(_postSite[layer], current),
        _ => null,
    };

    Tensor? Patch(int siteIndex, Tensor value)
    {
        if (siteIndex < 0) return null;
        var mask = _masks.Masks[siteIndex];
        if (mask is null) return null;
        var site = _masks.Sites[siteIndex];
        if (mask.dtype != value.dtype || !Devices.Same(mask.device, value.device)) mask = mask.to(value.dtype).to(value.device);
        long B = value.shape[0], T = value.shape[1];
        var columns = new List<long>();
        var deltas = new List<Tensor>();
        for (int c = 0; c < site.SourceCount; c++)
        {
            int s = site.FirstSource + c;
            if (!_needed[s]) continue;
            var current = _current[s] ?? throw new InvalidOperationException($"Source {_masks.Graph.Sources[s].Name} was not computed before {site.Destinations[0].Name}.");
            var patch = _values?[s];
            deltas.Add(patch is null ? -current : patch - current);
            columns.Add(c);
        }
        if (deltas.Count == 0) return null;
        var m = mask.index_select(3, tensor(columns.ToArray(), device: mask.device))[.., .., 0, ..].expand(B, T, columns.Count); // [B, T, n]
        return value.Plus(einsum("bts,sbtd->btd", m, stack(deltas)));
    }
}
