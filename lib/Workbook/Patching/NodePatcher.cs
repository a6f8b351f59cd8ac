using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// The patching equation on the residual (node) graph: each residual node (Resid Mid, Resid Post, Resid End)
/// takes <c>value + Σ_src mask · (patch[src] − current[src])</c> over its incoming sources. Patching a head's
/// single out-edge replaces its contribution for everything downstream: node ablation.
/// </summary>
internal sealed class NodePatcher : IForwardInterceptor
{
    readonly PatchMasks _masks;
    readonly Tensor? _values;
    readonly SourceIndex _index;
    readonly bool[] _needed;
    readonly Tensor?[] _current;
    readonly int[] _midSite, _postSite;

    public NodePatcher(PatchMasks masks, PatchValues values)
    {
        _masks = masks;
        _values = values.Values;
        var graph = masks.Graph;
        _index = new SourceIndex(graph);
        _needed = masks.SourcePatched();
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
                for (int h = 0; h < value.shape[0]; h++) _current[first + h] = value[h];
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
