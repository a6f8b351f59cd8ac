using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// The patching equation on the factorized graph (spec 0.4): every destination reads
/// <c>resid + Σ_src mask · (patch[src] − current[src])</c>, where current is the source's output in this same,
/// already patched, pass, so patches compound downstream.
///
/// Fast path (masks without gradients, shared by the batch). The differences Δ = patch − current are written once
/// into one buffer as sources are computed. For each site (all Q/K/V inputs of a block's heads, an MLP, Resid End)
/// the mask M is split as M = a·1 + (M − a) with a ∈ {0, 1} chosen so that (M − a) has the fewest nonzero source
/// columns: Σ_s M·Δ = a·(running sum of every earlier Δ) + (M − a)[:, cols] · Δ[cols]. Ablating a circuit's
/// complement (M mostly 1) then costs one small product over the few sources the circuit keeps, instead of a
/// product over every earlier source; ablating a small set (M mostly 0) costs a product over just those sources.
/// Positions where a site patches nothing (a never-patched prefix) are skipped. Token-specific masks use a
/// position-major buffer and batched products over positions.
///
/// Heads replaced everywhere: a head whose every out-edge, at every position, reads its patch value (118 of GPT-2 small's
/// 144 heads when an IOI circuit's complement is ablated) is not computed at all. Its patch value goes into the residual
/// stream in its place (<see cref="IForwardInterceptor.ReplacedHeads"/>), so its Δ is exactly zero: its Δ row is never
/// written, no plan reads it, and its own inputs are not formed. Attention sites then number rows among the computed
/// heads. Only when the caller allows it (no hooks or cache observe the pass).
///
/// General path (masks that require gradients or differ per prompt): Δ is kept per block as separate autograd
/// tensors and each site is an explicit einsum over them; exact and differentiable, for attribution and training.
/// </summary>
internal sealed class EdgePatcher : IForwardInterceptor, IReplacesHeads
{
    enum Layout { Flat, PositionMajor, General }

    sealed class SitePlan
    {
        public bool Patched;
        public float A;
        public int T0;
        public long[] Columns = Array.Empty<long>();
        public Tensor? ColumnIndex;
        /// <summary>Rows (destinations) whose input differs from the shared one; the others read resid + a·ΣΔ.</summary>
        public long[] ActiveRows = Array.Empty<long>();
        public Tensor? Correction; // (M − a) at active rows and columns. Flat: [active, k]; PositionMajor: [T − T0 or 1, active, k]
        public SparseHeadIndex? HeadIndex; // attention sites: the active rows' indices per Q/K/V
    }

    /// <summary>
    /// Host arrays that become tensors on the forward pass's device in two transfers (one float, one int64) once every
    /// plan is known: on a GPU each blocking host-to-device copy waits for the queue to drain, so one per tensor
    /// would cost a synchronisation each.
    /// </summary>
    sealed class Staging
    {
        readonly List<float> _floats = new();
        readonly List<long> _longs = new();
        readonly List<Action<Tensor, Tensor>> _assign = new();

        public void Float(float[] data, long[] shape, Action<Tensor> set)
        {
            int offset = _floats.Count;
            _floats.AddRange(data);
            _assign.Add((f, _) => set(f.narrow(0, offset, data.Length).view(shape)));
        }

        public Func<Tensor> Long(long[] data)
        {
            int offset = _longs.Count;
            _longs.AddRange(data);
            Tensor? view = null;
            _assign.Add((_, l) => view = l.narrow(0, offset, data.Length));
            return () => view ?? throw new InvalidOperationException("Staged tensors are used before their upload.");
        }

        public void Long(long[] data, Action<Tensor> set)
        {
            var get = Long(data);
            _assign.Add((_, _) => set(get()));
        }

        /// <summary>Runs <paramref name="action"/> after the upload, once the views registered before it exist.</summary>
        public void AfterUpload(Action action) => _assign.Add((_, _) => action());

        /// <summary>Uploads everything; the tensors belong to the caller's dispose scope (Patcher.Run's).</summary>
        public void Upload(Device device, ScalarType dtype)
        {
            if (_assign.Count == 0) return;
            var floats = tensor(_floats.ToArray()).to(dtype).to(device);
            var longs = tensor(_longs.ToArray()).to(device);
            foreach (var assign in _assign) assign(floats, longs);
        }
    }

    /// <summary>One kind's rows of a site, as staged tensors that exist after the upload.</summary>
    sealed record StagedKindRows(int Count, Func<Tensor> Heads, Func<Tensor>? Selection);

    readonly PatchMasks _masks;
    readonly Tensor? _values;
    readonly SourceIndex _index;
    readonly bool[] _needed;
    readonly Layout _layout;
    readonly SitePlan[] _plans;
    readonly bool _usesRunningSum;
    readonly int[] _attentionSite, _mlpSite;
    readonly int _endSite;
    readonly int _nSources;
    readonly ReplacedHeadPlan _replaced;

    Tensor? _delta;   // Flat: [S, B*T*D]; PositionMajor: [T, S, B, D]
    Tensor? _sum;     // running Σ Δ over recorded sources, shaped like one Δ row
    readonly List<(int First, Tensor Delta)> _chunks = new(); // General: Δ per source group [n, B, T, D]
    long _b, _t, _d;

    readonly Device _device;

    /// <param name="device">Where the forward pass runs (the model's device); the plans' small tensors are put there
    /// whatever device the masks live on.</param>
    /// <param name="replaceHeads">Whether heads patched everywhere may go uncomputed (false when hooks or a cache observe the pass).</param>
    public EdgePatcher(PatchMasks masks, PatchValues values, Device device, bool replaceHeads = true)
    {
        _masks = masks;
        _device = device;
        _values = values.Values;
        var graph = masks.Graph;
        _index = new SourceIndex(graph);
        _nSources = graph.Sources.Count;
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
        _plans = new SitePlan[masks.Sites.Count];
        _replaced = ReplacedHeadPlan.None(graph);
        if (_layout == Layout.General)
        {
            _needed = masks.SourcePatched();
            return;
        }
        _needed = new bool[_nSources];
        var host = HostCopies(masks.Masks);
        var staging = new Staging();
        if (replaceHeads) _replaced = ReplacedHeadPlan.From(graph, PatchedEverywhere(host), staging.Long);
        for (int i = 0; i < _plans.Length; i++)
        {
            _plans[i] = Plan(host[i], masks.Masks[i]?.shape, masks.Sites[i], staging);
            var p = _plans[i];
            if (!p.Patched) continue;
            if (p.A != 0)
                for (int s = 0; s < masks.Sites[i].SourceCount; s++) _needed[s] |= !_replaced.IsReplaced(s);
            foreach (var c in p.Columns) _needed[c] |= !_replaced.IsReplaced((int)c);
        }
        _usesRunningSum = _plans.Any(p => p.Patched && p.A != 0);
        staging.Upload(_device, _values?.dtype ?? ScalarType.Float32);
    }

    /// <summary>Per source: does every site that reads it patch it throughout its column (mask 1 at every position and row)?</summary>
    bool[] PatchedEverywhere(float[]?[] host)
    {
        var ones = host.Select((m, i) => m is null ? null : ColumnsAllOnes(m, _masks.Sites[i].SourceCount)).ToArray();
        return ReplacedHeadPlan.PatchedEverywhere(_masks.Sites, ones, _nSources);
    }

    /// <summary>Per column of a host mask [positions · rows, columns]: is it 1 everywhere?</summary>
    static bool[] ColumnsAllOnes(float[] m, int columns)
    {
        var ones = Enumerable.Repeat(true, columns).ToArray();
        for (int j = 0; j < m.Length; j++)
            if (m[j] != 1) ones[j % columns] = false;
        return ones;
    }

    /// <summary>
    /// Every site mask as a float array on the host. Masks on a GPU come back in one transfer (one synchronisation
    /// instead of one per site).
    /// </summary>
    static float[]?[] HostCopies(Tensor?[] masks)
    {
        var result = new float[]?[masks.Length];
        var onDevice = Enumerable.Range(0, masks.Length).Where(i => masks[i] is { } m && m.device_type != DeviceType.CPU).ToArray();
        if (onDevice.Length > 0)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var flat = cat(onDevice.Select(i => masks[i]!.detach().to(ScalarType.Float32).reshape(-1)).ToArray()).cpu();
            var all = flat.data<float>().ToArray();
            int offset = 0;
            foreach (int i in onDevice)
            {
                int n = (int)masks[i]!.numel();
                result[i] = all.AsSpan(offset, n).ToArray();
                offset += n;
            }
        }
        for (int i = 0; i < masks.Length; i++)
        {
            if (masks[i] is not { } m || result[i] is not null) continue;
            using var cpu = m.detach().to(ScalarType.Float32).contiguous();
            result[i] = cpu.data<float>().ToArray();
        }
        return result;
    }

    /// <summary>Chooses a, the patched positions and the correction columns for one site (see the class comment).</summary>
    SitePlan Plan(float[]? m, long[]? shape, PatchSite site, Staging staging)
    {
        var plan = new SitePlan();
        if (m is null || shape is null) return plan;
        int tm = (int)shape[1], rows = site.Rows, ns = site.SourceCount; // m is [tm, rows, ns]
        int width = rows * ns;
        // Replaced sources have Δ = 0, so their columns cost nothing either way; replaced heads' inputs are never formed.
        int heads = _masks.Graph.Config.NHeads;
        var computed = site.Kind == SiteKind.Attention ? _replaced.ComputedHeads(site.Block) : null;
        bool RowRead(int r) => computed is null || !_replaced.IsReplaced(_index.FirstHead[site.Block] + r % heads);
        bool ColumnRead(int c) => !_replaced.IsReplaced(site.FirstSource + c);
        int t0 = 0;
        while (t0 < tm && Array.TrueForAll(m.AsSpan(t0 * width, width).ToArray(), v => v == 0)) t0++;
        if (t0 == tm) return plan;
        var nonzeroFor = new[] { new bool[ns], new bool[ns] }; // columns where (M − a) != 0, for a = 0 and a = 1
        for (int t = t0; t < tm; t++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < ns; c++)
                {
                    if (!RowRead(r) || !ColumnRead(c)) continue;
                    float v = m[t * width + r * ns + c];
                    if (v != 0) nonzeroFor[0][c] = true;
                    if (v != 1) nonzeroFor[1][c] = true;
                }
        int a = nonzeroFor[1].Count(x => x) < nonzeroFor[0].Count(x => x) ? 1 : 0;
        var cols = Enumerable.Range(0, ns).Where(c => nonzeroFor[a][c]).Select(c => (long)c).ToArray();
        // Gathering scattered Δ rows costs a copy of each (read and write) before the product reads them; a contiguous
        // span costs only the product's read, so take the whole span unless it is much wider than the columns it holds.
        if (cols.Length > 1 && cols[^1] - cols[0] + 1 <= 3 * cols.Length)
            cols = Enumerable.Range((int)cols[0], (int)(cols[^1] - cols[0] + 1)).Select(c => (long)c).ToArray();
        plan.Patched = true;
        plan.A = a;
        plan.T0 = tm == 1 ? 0 : t0;
        plan.Columns = cols;
        if (cols.Length > 0)
        {
            int tp = tm == 1 ? 1 : tm - t0, tStart = tm == 1 ? 0 : t0;
            float Entry(int t, int r, int j) => m[(tStart + t) * width + r * ns + (int)cols[j]] - a;
            var read = Enumerable.Range(0, rows).Where(RowRead).ToArray();
            var active = read.Where(r => Enumerable.Range(0, tp).Any(t => Enumerable.Range(0, cols.Length).Any(j => Entry(t, r, j) != 0))).ToArray();
            // When most destinations need their own input, giving every row one is cheaper than a shared projection
            // plus gathers and scatters of the rest: the model then takes its dense per-head path.
            if (active.Length >= 0.6 * read.Length) active = read;
            var corr = new float[tp * active.Length * cols.Length];
            for (int t = 0; t < tp; t++)
                for (int i = 0; i < active.Length; i++)
                    for (int j = 0; j < cols.Length; j++)
                        corr[(t * active.Length + i) * cols.Length + j] = Entry(t, active[i], j);
            // Rows are numbered among the computed heads (kind · n_computed + rank), as the model's projection numbers them.
            plan.ActiveRows = computed is null ? active.Select(r => (long)r).ToArray()
                : active.Select(r => (long)(r / heads * computed.Length + Array.IndexOf(computed, (long)(r % heads)))).ToArray();
            staging.Float(corr, _layout == Layout.Flat ? new long[] { active.Length, cols.Length } : new long[] { tp, active.Length, cols.Length },
                t => plan.Correction = t);
            staging.Long(cols, t => plan.ColumnIndex = t);
            if (site.Kind == SiteKind.Attention && active.Length > 0)
            {
                var layout = SparseHeadIndex.Layout(plan.ActiveRows, site.Rows / heads, computed?.Length ?? heads);
                var kinds = layout.Select(k => k is null ? null : new StagedKindRows(k.Heads.Length, staging.Long(k.Heads), k.Selection is null ? null : staging.Long(k.Selection))).ToArray();
                staging.AfterUpload(() => plan.HeadIndex = new SparseHeadIndex(kinds.Select(k => k is null ? null
                    : new SparseHeadIndex.KindRows(k.Count, k.Heads(), k.Selection?.Invoke())).ToArray()));
            }
        }
        return plan;
    }

    Tensor? Patch(int first, int count) => _values?.narrow(0, first, count);

    /// <summary>Records Δ = patch − current for sources [first, first + count); <paramref name="current"/> is [count, B, T, D].</summary>
    void Record(int first, Tensor current)
    {
        int count = (int)current.shape[0];
        var patch = Patch(first, count);
        if (_layout == Layout.General)
        {
            _chunks.Add((first, patch is null ? -current : patch - current));
            return;
        }
        Allocate(current);
        using var _ = no_grad();
        using var rows = _layout == Layout.Flat
            ? _delta!.narrow(0, first, count).view(count, _b, _t, _d)
            : _delta!.narrow(1, first, count).permute(1, 2, 0, 3); // [count, B, T, D] view of [T, count, B, D]
        bool all = true;
        for (int i = 0; i < count; i++) all &= _needed[first + i];
        if (all)
        {
            if (patch is null) rows.copy_(current).neg_();
            else rows.copy_(patch.expand(current.shape)).sub_(current);
        }
        else
        {
            for (int i = 0; i < count; i++)
            {
                if (!_needed[first + i]) continue; // zeroed at allocation
                using var row = rows[i];
                if (patch is null) row.copy_(current[i]).neg_();
                else row.copy_(patch[i].expand(current[i].shape)).sub_(current[i]);
            }
        }
        if (_usesRunningSum)
        {
            using var block = _layout == Layout.Flat ? _delta.narrow(0, first, count).sum(dim: 0) : _delta.narrow(1, first, count).sum(dim: 1);
            _sum!.PlusInPlace(block);
        }
    }

    void Allocate(Tensor current)
    {
        if (_delta is not null) return;
        (_b, _t, _d) = (current.shape[1], current.shape[2], current.shape[3]);
        bool flat = _layout == Layout.Flat;
        _delta = empty(flat ? new long[] { _nSources, _b * _t * _d } : new long[] { _t, _nSources, _b, _d }, dtype: current.dtype, device: current.device);
        if (_usesRunningSum) _sum = zeros(flat ? new long[] { _b * _t * _d } : new long[] { _t, _b, _d }, dtype: current.dtype, device: current.device);
        // Rows of sources no site reads are never written (their outputs may not even be computed); they must be
        // zero, not garbage, should a product ever touch them (0 · NaN is NaN).
        using var _ = no_grad();
        for (int s = 0; s < _nSources; s++)
        {
            if (_needed[s]) continue;
            using var row = flat ? _delta.select(0, s) : _delta.select(1, s);
            row.zero_();
        }
    }

    // The fast layouts copy each source into _delta (allocated on the embedding, before any block); the general one
    // keeps the Δ tensors themselves.
    public bool KeepsBlockTensors => _layout == Layout.General;

    public void OnSource(SourceSite site, int layer, Tensor value)
    {
        switch (site)
        {
            case SourceSite.Embedding: Record(_index.ResidStart, value.unsqueeze(0)); break;
            case SourceSite.HeadResults when _replaced.ComputedHeads(layer) is { } computed:
                for (int j = 0; j < computed.Length; j++)
                {
                    if (!_needed[_index.FirstHead[layer] + computed[j]]) continue;
                    using var row = value.narrow(0, j, 1);
                    Record(_index.FirstHead[layer] + (int)computed[j], row);
                }
                break;
            case SourceSite.HeadResults: Record(_index.FirstHead[layer], value); break;
            case SourceSite.MlpOut when _index.Mlp[layer] >= 0: Record(_index.Mlp[layer], value.unsqueeze(0)); break;
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

    public HeadInputs? AttentionInputs(int layer, Tensor residPre)
    {
        int siteIndex = _attentionSite[layer];
        int heads = _masks.Graph.Config.NHeads;
        if (_layout == Layout.General)
        {
            if (siteIndex < 0 || _masks.Masks[siteIndex] is not { } mask) return null;
            (_b, _t, _d) = (residPre.shape[0], residPre.shape[1], residPre.shape[2]);
            var summed = GeneralSite(mask, _masks.Sites[siteIndex], residPre); // [rows, B, T, D]
            return HeadInputs.FromDense(summed.view(summed.shape[0] / heads, heads, _b, _t, _d));
        }
        var parts = SiteParts(siteIndex, residPre);
        if (parts is null) return null;
        var (shared, rows, rowInputs) = parts.Value;
        return new SparseHeadInputs(shared, _masks.Sites[siteIndex].Rows / heads, rows, rowInputs, _plans[siteIndex].HeadIndex);
    }

    public Tensor? Destination(DestinationSite site, int layer, Tensor current) => site switch
    {
        DestinationSite.MlpInput => SingleDestination(_mlpSite[layer], current),
        DestinationSite.FinalResidual => SingleDestination(_endSite, current),
        _ => null,
    };

    Tensor? SingleDestination(int siteIndex, Tensor resid)
    {
        if (siteIndex < 0 || _masks.Masks[siteIndex] is not { } mask) return null;
        if (_layout == Layout.General)
        {
            (_b, _t, _d) = (resid.shape[0], resid.shape[1], resid.shape[2]);
            return GeneralSite(mask, _masks.Sites[siteIndex], resid).squeeze(0);
        }
        var parts = SiteParts(siteIndex, resid);
        if (parts is null) return null;
        var (shared, rows, rowInputs) = parts.Value;
        return rows.Length == 0 ? shared : rowInputs![0];
    }

    /// <summary>
    /// A site's inputs on the fast path: the input every plain destination reads (resid + a·ΣΔ at patched positions),
    /// and the inputs [active rows, B, T, D] of the destinations with corrections. Null when nothing is patched there.
    /// </summary>
    (Tensor Shared, long[] Rows, Tensor? RowInputs)? SiteParts(int siteIndex, Tensor resid)
    {
        if (siteIndex < 0 || _masks.Masks[siteIndex] is null) return null;
        var plan = _plans[siteIndex];
        if (!plan.Patched) return null;
        if (_delta is null) throw new InvalidOperationException("No source was recorded before the first patched destination.");
        (_b, _t, _d) = (resid.shape[0], resid.shape[1], resid.shape[2]);
        int n = plan.ActiveRows.Length, k = plan.Columns.Length;
        if (_layout == Layout.Flat)
        {
            var shared = plan.A != 0 ? resid.Plus(_sum!.view(_b, _t, _d)) : resid;
            if (n == 0) return (shared, plan.ActiveRows, null);
            var delta = Gather(_delta, 0, plan);                                        // [k, B*T*D]
            var rowInputs = addmm(shared.reshape(1, -1), plan.Correction!, delta, beta: 1, alpha: 1).view(n, _b, _t, _d);
            return (shared, plan.ActiveRows, rowInputs);
        }
        // Position-major: only positions t >= T0 are patched at this site.
        int t0 = plan.T0;
        long tp = _t - t0;
        Tensor sharedT;                                                                  // [B, T, D]
        if (plan.A == 0) sharedT = resid;
        else if (t0 == 0) sharedT = resid.Plus(_sum!.permute(1, 0, 2));
        else sharedT = cat(new[] { resid.narrow(1, 0, t0), resid.narrow(1, t0, tp).Plus(_sum!.narrow(0, t0, tp).permute(1, 0, 2)) }, 1);
        if (n == 0) return (sharedT, plan.ActiveRows, null);
        var baseT = sharedT.narrow(1, t0, tp).permute(1, 0, 2);                          // [T', B, D]
        var deltaK = Gather(_delta.narrow(0, t0, tp), 1, plan).reshape(tp, k, _b * _d);   // [T', k, B*D]
        var corr = plan.Correction!.expand(tp, n, k);
        var outT = bmm(corr, deltaK).view(tp, n, _b, _d).Plus(baseT.unsqueeze(1));       // [T', n, B, D]
        var patched = outT.permute(1, 2, 0, 3);                                          // [n, B, T', D]
        if (t0 == 0) return (sharedT, plan.ActiveRows, patched.contiguous());
        var result = empty(n, _b, _t, _d, dtype: resid.dtype, device: resid.device);
        result.narrow(2, 0, t0).copy_(resid.narrow(1, 0, t0).unsqueeze(0).expand(n, _b, t0, _d));
        result.narrow(2, t0, tp).copy_(patched);
        return (sharedT, plan.ActiveRows, result);
    }

    /// <summary>The Δ rows of a plan's columns along <paramref name="dim"/>: a view when they are contiguous, else a gather.</summary>
    static Tensor Gather(Tensor delta, long dim, SitePlan plan)
    {
        var cols = plan.Columns;
        bool contiguous = cols[^1] - cols[0] == cols.Length - 1;
        return contiguous ? delta.narrow(dim, cols[0], cols.Length) : delta.index_select(dim, plan.ColumnIndex!);
    }

    /// <summary>resid + Σ mask · Δ for every destination of a site, [rows, B, T, D], by explicit einsums over the Δ chunks.</summary>
    Tensor GeneralSite(Tensor mask, PatchSite site, Tensor resid)
    {
        if (mask.dtype != resid.dtype || !Devices.Same(mask.device, resid.device)) mask = mask.to(resid.dtype).to(resid.device);
        int ns = site.SourceCount, rows = site.Rows;
        var m = mask.expand(_b, _t, rows, ns);
        Tensor total = resid.unsqueeze(0).expand(rows, _b, _t, _d);
        foreach (var (first, delta) in _chunks)
        {
            if (first >= ns) break;
            int n = (int)delta.shape[0];
            total = total.Plus(einsum("btrs,sbtd->rbtd", m.narrow(3, first, n), delta));
        }
        return total.contiguous();
    }
}
