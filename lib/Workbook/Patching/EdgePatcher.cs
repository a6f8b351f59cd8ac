using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// The patching equation on the factorized graph (spec 0.4): every destination reads
/// <c>resid + Σ_src mask · (patch[src] − current[src])</c>, where current is the source's output in this same,
/// already patched, pass, so patches compound downstream.
///
/// Fast path (masks without gradients, shared by the batch): the differences Δ = patch − current are written once
/// into one buffer as sources are computed, skipping sources no mask reads, and each site (all Q/K/V inputs of a
/// block's heads, an MLP, Resid End) is one matrix product over the buffer's prefix. Token-specific masks use a
/// position-major buffer and one batched product over positions. Masks that require gradients or differ per prompt
/// take a general path that keeps Δ per block as separate autograd tensors.
/// </summary>
internal sealed class EdgePatcher : IForwardInterceptor
{
    enum Layout { Flat, PositionMajor, General }

    readonly PatchMasks _masks;
    readonly Tensor? _values;
    readonly SourceIndex _index;
    readonly bool[] _needed;
    readonly Layout _layout;
    readonly int[] _attentionSite, _mlpSite;
    readonly int _endSite;
    readonly int _nSources;

    Tensor? _delta;                                   // Flat: [S, B*T*D]; PositionMajor: [T, S, B, D]
    readonly List<(int First, Tensor Delta)> _chunks = new(); // General: Δ per source group [n, B, T, D]
    long _b, _t, _d;

    public EdgePatcher(PatchMasks masks, PatchValues values)
    {
        _masks = masks;
        _values = values.Values;
        var graph = masks.Graph;
        _index = new SourceIndex(graph);
        _nSources = graph.Sources.Count;
        _needed = masks.SourcePatched();
        bool general = masks.Masks.Any(m => m is not null && (m.requires_grad || m.shape[0] > 1));
        bool positional = masks.Masks.Any(m => m is not null && m.shape[1] > 1);
        _layout = general ? Layout.General : positional ? Layout.PositionMajor : Layout.Flat;
        int L = graph.Config.NLayers;
        _attentionSite = Enumerable.Repeat(-1, L).ToArray();
        _mlpSite = Enumerable.Repeat(-1, L).ToArray();
        _endSite = -1;
        for (int i = 0; i < masks.Sites.Count; i++)
        {
            var s = masks.Sites[i];
            switch (s.Kind)
            {
                case SiteKind.Attention: _attentionSite[s.Block] = i; break;
                case SiteKind.Mlp: _mlpSite[s.Block] = i; break;
                case SiteKind.ResidEnd: _endSite = i; break;
            }
        }
    }

    Tensor? Patch(int first, int count) => _values?.narrow(0, first, count);

    /// <summary>Records Δ = patch − current for sources [first, first + count); <paramref name="current"/> is [count, B, T, D].</summary>
    void Record(int first, Tensor current)
    {
        int count = (int)current.shape[0];
        var patch = Patch(first, count);
        switch (_layout)
        {
            case Layout.General:
                _chunks.Add((first, patch is null ? -current : patch - current));
                return;
            case Layout.Flat:
            {
                Allocate(current);
                using var rows = _delta!.narrow(0, first, count).view(count, _b, _t, _d);
                Fill(rows, patch, current, first);
                return;
            }
            default:
            {
                Allocate(current);
                using var rows = _delta!.narrow(1, first, count).permute(1, 2, 0, 3); // [count, B, T, D] view
                Fill(rows, patch, current, first);
                return;
            }
        }
    }

    void Fill(Tensor rows, Tensor? patch, Tensor current, int first)
    {
        using var _ = no_grad();
        for (int i = 0; i < current.shape[0]; i++)
        {
            using var row = rows[i];
            if (!_needed[first + i]) continue; // zeroed at allocation
            if (patch is null) row.copy_(current[i]).neg_();
            else row.copy_(patch[i]).sub_(current[i]);
        }
    }

    void Allocate(Tensor current)
    {
        if (_delta is not null) return;
        (_b, _t, _d) = (current.shape[1], current.shape[2], current.shape[3]);
        var shape = _layout == Layout.Flat
            ? new long[] { _nSources, _b * _t * _d }
            : new long[] { _t, _nSources, _b, _d };
        _delta = empty(shape, dtype: current.dtype, device: current.device);
        // Rows of sources no mask reads are never written (their outputs may not even be computed);
        // they must be zero, not garbage, because 0 · NaN is NaN in the site products.
        using var _ = no_grad();
        for (int s = 0; s < _nSources; s++)
        {
            if (_needed[s]) continue;
            using var row = _layout == Layout.Flat ? _delta.select(0, s) : _delta.select(1, s);
            row.zero_();
        }
    }

    public void OnEmbedding(Tensor residStart) => Record(_index.ResidStart, residStart.unsqueeze(0));

    public bool NeedsHeadResults(int layer)
    {
        int first = _index.FirstHead[layer];
        for (int h = 0; h < _masks.Graph.Config.NHeads; h++)
            if (_needed[first + h]) return true;
        return false;
    }

    public void OnHeadResults(int layer, Tensor results) => Record(_index.FirstHead[layer], results);

    public void OnMlpOut(int layer, Tensor mlpOut)
    {
        if (_index.Mlp[layer] >= 0) Record(_index.Mlp[layer], mlpOut.unsqueeze(0));
    }

    public Tensor? AttentionInputs(int layer, Tensor residPre)
    {
        int site = _attentionSite[layer];
        var summed = SiteInputs(site, residPre); // [rows, B, T, D]
        if (summed is null) return null;
        int H = _masks.Graph.Config.NHeads;
        return summed.view(summed.shape[0] / H, H, _b, _t, _d);
    }

    public Tensor? MlpInput(int layer, Tensor resid) => SiteInputs(_mlpSite[layer], resid)?.squeeze(0);

    public Tensor? FinalResidual(Tensor resid) => SiteInputs(_endSite, resid)?.squeeze(0);

    /// <summary>resid + Σ mask · Δ for every destination of a site: [rows, B, T, D], or null when nothing is patched there.</summary>
    Tensor? SiteInputs(int siteIndex, Tensor resid)
    {
        if (siteIndex < 0) return null;
        var mask = _masks.Masks[siteIndex];
        if (mask is null) return null;
        var site = _masks.Sites[siteIndex];
        if (mask.dtype != resid.dtype || mask.device != resid.device) mask = mask.to(resid.dtype).to(resid.device);
        int ns = site.SourceCount, rows = site.Rows;
        if (site.FirstSource != 0) throw new InvalidOperationException("Factorized sites read a prefix of the sources.");
        (_b, _t, _d) = (resid.shape[0], resid.shape[1], resid.shape[2]);
        switch (_layout)
        {
            case Layout.Flat:
            {
                using var m = mask[0, 0];                       // [rows, ns]
                using var delta = _delta!.narrow(0, 0, ns);      // [ns, B*T*D]
                return addmm(resid.reshape(1, -1), m, delta, beta: 1, alpha: 1).view(rows, _b, _t, _d);
            }
            case Layout.PositionMajor:
            {
                using var m = mask[0].expand(_t, rows, ns);      // [T, rows, ns]
                using var delta = _delta!.narrow(1, 0, ns).view(_t, ns, _b * _d);
                using var product = bmm(m, delta).view(_t, rows, _b, _d).permute(1, 2, 0, 3); // [rows, B, T, D]
                return (product + resid).contiguous();
            }
            default:
            {
                var m = mask.expand(_b, _t, rows, ns);
                Tensor total = resid.unsqueeze(0).expand(rows, _b, _t, _d);
                foreach (var (first, delta) in _chunks)
                {
                    if (first >= ns) break;
                    int n = (int)delta.shape[0];
                    total = total + einsum("btrs,sbtd->rbtd", m.narrow(3, first, n), delta);
                }
                return total.contiguous();
            }
        }
    }
}
