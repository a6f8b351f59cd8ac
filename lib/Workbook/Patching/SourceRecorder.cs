using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// Records every graph source's output during an unpatched forward pass into one tensor
/// [n_sources, batch, seq, d_model] (AutoCircuit's "src_outs").
/// </summary>
internal sealed class SourceRecorder : IForwardInterceptor
{
    readonly ComputationGraph _graph;
    readonly SourceIndex _index;
    public Tensor? Outputs { get; private set; }

    public SourceRecorder(ComputationGraph graph)
    {
        _graph = graph;
        _index = new SourceIndex(graph);
    }

    Tensor Buffer(Tensor like)
    {
        // Moved out of the forward pass's dispose scope into the caller's, like the logits.
        return Outputs ??= empty(new long[] { _graph.Sources.Count, like.shape[0], like.shape[1], like.shape[2] }, dtype: like.dtype, device: like.device)
            .MoveToOuterDisposeScope();
    }

    void Put(int index, Tensor value)
    {
        if (index < 0) return;
        using var _ = no_grad();
        Buffer(value)[index].copy_(value);
    }

    public bool NeedsHeadResults(int layer) => true;

    public void OnSource(SourceSite site, int layer, Tensor value)
    {
        switch (site)
        {
            case SourceSite.Embedding: Put(_index.ResidStart, value); break;
            case SourceSite.BlockInput when layer > 0: Put(_index.BlockInput[layer], value); break;
            case SourceSite.ResidMid: Put(_index.ResidMid[layer], value); break;
            case SourceSite.MlpOut: Put(_index.Mlp[layer], value); break;
            case SourceSite.HeadResults:
                using (no_grad()) Buffer(value[0]).narrow(0, _index.FirstHead[layer], value.shape[0]).copy_(value);
                break;
        }
    }

    /// <summary>Runs <paramref name="tokens"/> unpatched; returns source outputs [S, B, T, D] and logits, both in the caller's dispose scope.</summary>
    public static (Tensor Sources, Tensor Logits) Record(HookedTransformer model, ComputationGraph graph, Tensor tokens, HookSet? hooks = null)
    {
        var recorder = new SourceRecorder(graph);
        using var _ = no_grad();
        var logits = model.Forward(tokens, hooks, recorder);
        return (recorder.Outputs!, logits);
    }
}

/// <summary>
/// Records the sources of several graphs (the factorized and the residual view) in one unpatched forward pass, so a
/// grid that ablates both nodes and edges runs the patch-source prompts once. Each recorder copies what it keeps, so the
/// model may free every block's intermediates as the block ends.
/// </summary>
internal sealed class SourceRecorderSet(IReadOnlyList<SourceRecorder> recorders) : IForwardInterceptor
{
    public void OnSource(SourceSite site, int layer, Tensor value)
    {
        foreach (var r in recorders) r.OnSource(site, layer, value);
    }

    public bool NeedsHeadResults(int layer) => true;

    public bool KeepsBlockTensors => false;

    /// <summary>The logits of a recording are not used: compute them for one position only.</summary>
    public Tensor? Destination(DestinationSite site, int layer, Tensor current) =>
        site == DestinationSite.FinalResidual ? current.narrow(1, current.shape[1] - 1, 1) : null;

    /// <summary>Source outputs [S_g, B, T, D] of each graph in <paramref name="graphs"/>, from one run of <paramref name="tokens"/>, in the caller's dispose scope.</summary>
    public static IReadOnlyList<Tensor> Record(HookedTransformer model, IReadOnlyList<ComputationGraph> graphs, Tensor tokens)
    {
        if (graphs.Count == 0) throw new ArgumentException("Record the sources of at least one graph.");
        var recorders = graphs.Select(g => new SourceRecorder(g)).ToList();
        using var _ = no_grad();
        using (var scope = NewDisposeScope())
        {
            model.Forward(tokens, null, new SourceRecorderSet(recorders));
            foreach (var r in recorders) r.Outputs!.MoveToOuterDisposeScope();
        }
        return recorders.Select(r => r.Outputs!).ToList();
    }
}

/// <summary>
/// Sums every source's output over the prompts of unpatched forward passes, in float64, as each pass computes it: one
/// [seq, d_model] running sum per site ([heads, seq, d_model] for a block's heads), shared by every graph view that has
/// that source. <see cref="Mean"/> lays the sums out as one view's [n_sources, 1, seq, d_model] means. Each batch's sum
/// over its prompts is taken as <c>x.to(float64).sum(batch axis)</c> and added to the running sum (which starts at
/// zero, and 0 + x = x), the same arithmetic as summing a recording of the batch, so the means are those of recording
/// every source first. The running sums live in one buffer allocated before the first pass: allocated site by site
/// between the pass's own temporaries, they fragmented the C heap enough to add 7 GB to a Pythia-2.8B mean pass.
/// </summary>
internal sealed class SourceSums : IForwardInterceptor, IDisposable
{
    readonly IReadOnlyList<SourceIndex> _indexes;
    readonly int _nHeads, _dModel;
    // The first buffer row of each wanted site (-1: not wanted); a block's heads take n_heads rows.
    readonly int _embeddingRow;
    readonly int[] _blockInputRow, _residMidRow, _mlpRow, _headRow;
    readonly int _rows;
    Tensor? _sums; // [rows, seq, d_model], float64

    public SourceSums(IReadOnlyList<ComputationGraph> graphs)
    {
        var config = graphs[0].Config;
        int layers = config.NLayers;
        (_nHeads, _dModel) = (config.NHeads, config.DModel);
        _indexes = graphs.Select(g => new SourceIndex(g)).ToList();
        int rows = 0;
        int Row(Func<SourceIndex, int> site, int count = 1)
        {
            if (!_indexes.Any(i => site(i) >= 0)) return -1;
            rows += count;
            return rows - count;
        }
        _embeddingRow = Row(i => i.ResidStart);
        _blockInputRow = new int[layers];
        _residMidRow = new int[layers];
        _mlpRow = new int[layers];
        _headRow = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            int layer = l;
            _blockInputRow[l] = l > 0 ? Row(i => i.BlockInput[layer]) : -1;
            _headRow[l] = Row(i => i.FirstHead[layer], _nHeads);
            _residMidRow[l] = Row(i => i.ResidMid[layer]);
            _mlpRow[l] = Row(i => i.Mlp[layer]);
        }
        _rows = rows;
    }

    /// <summary>Adds a batch's per-site sums over its prompts (<paramref name="batchAxis"/>) into rows [row, row + count).</summary>
    void Accumulate(int row, int count, Tensor value, int batchAxis)
    {
        if (row < 0) return;
        if (_sums is null) throw new InvalidOperationException("Sources are summed before the running sums exist.");
        using var scope = NewDisposeScope();
        var batchSum = value.to(ScalarType.Float64).sum(batchAxis); // [seq, d_model], or [heads, seq, d_model]
        var target = _sums.narrow(0, row, count);
        target.add_(batchSum.dim() == target.dim() ? batchSum : batchSum.unsqueeze(0));
    }

    void Allocate(long seq, Device device)
    {
        if (_sums is not null)
        {
            if (_sums.shape[1] != seq) throw new ArgumentException($"Mean ablation needs prompts of one length: got {_sums.shape[1]} and {seq} tokens.");
            return;
        }
        _sums = zeros(new long[] { _rows, seq, _dModel }, dtype: ScalarType.Float64, device: device);
    }

    public bool NeedsHeadResults(int layer) => _headRow[layer] >= 0;

    public bool KeepsBlockTensors => false;

    public void OnSource(SourceSite site, int layer, Tensor value)
    {
        using var _ = no_grad();
        switch (site)
        {
            case SourceSite.Embedding: Accumulate(_embeddingRow, 1, value, 0); break;
            case SourceSite.BlockInput when layer > 0: Accumulate(_blockInputRow[layer], 1, value, 0); break;
            case SourceSite.ResidMid: Accumulate(_residMidRow[layer], 1, value, 0); break;
            case SourceSite.MlpOut: Accumulate(_mlpRow[layer], 1, value, 0); break;
            case SourceSite.HeadResults: Accumulate(_headRow[layer], _nHeads, value, 1); break;
        }
    }

    /// <summary>
    /// Adds a batch's recordings (<see cref="SourceRecorderSet.Record"/> of <paramref name="views"/>, [n_sources, batch, seq,
    /// d_model] each) instead of running it again: each site's rows, taken from the first view that has them, summed
    /// over the batch in float64 as <see cref="OnSource"/> sums them.
    /// </summary>
    public void AddRecorded(IReadOnlyList<ComputationGraph> views, IReadOnlyList<Tensor> recordings)
    {
        using var _ = no_grad();
        Allocate(recordings[0].shape[2], recordings[0].device);
        var indexes = views.Select(v => new SourceIndex(v)).ToList();
        void From(int row, Func<SourceIndex, int> site, int count = 1)
        {
            if (row < 0) return;
            for (int i = 0; i < indexes.Count; i++)
            {
                if (site(indexes[i]) is not (var at and >= 0)) continue;
                var rows = recordings[i].narrow(0, at, count);
                Accumulate(row, count, count == 1 ? rows[0] : rows, count == 1 ? 0 : 1);
                return;
            }
            throw new InvalidOperationException("A recording lacks a source whose mean is asked for.");
        }
        From(_embeddingRow, i => i.ResidStart);
        for (int l = 0; l < _mlpRow.Length; l++)
        {
            int layer = l;
            From(_blockInputRow[l], i => i.BlockInput[layer]);
            From(_headRow[l], i => i.FirstHead[layer], _nHeads);
            From(_residMidRow[l], i => i.ResidMid[layer]);
            From(_mlpRow[l], i => i.Mlp[layer]);
        }
    }

    /// <summary>The logits of a pass that only sums sources are not used: compute them for one position only.</summary>
    public Tensor? Destination(DestinationSite site, int layer, Tensor current) =>
        site == DestinationSite.FinalResidual ? current.narrow(1, current.shape[1] - 1, 1) : null;

    /// <summary>Runs <paramref name="tokens"/> unpatched and adds its sources to the sums.</summary>
    public void Add(HookedTransformer model, Tensor tokens)
    {
        using var _ = no_grad();
        Allocate(tokens.shape[1], model.Device);
        using var scope = NewDisposeScope();
        model.Forward(tokens, null, this);
    }

    /// <summary>The means of <paramref name="graph"/>'s sources over <paramref name="count"/> prompts: [n_sources, 1, seq, d_model] in <paramref name="dtype"/>, in the caller's dispose scope.</summary>
    public Tensor Mean(ComputationGraph graph, int count, ScalarType dtype)
    {
        if (_sums is null) throw new InvalidOperationException("No sums were taken.");
        var index = new SourceIndex(graph);
        var rows = Enumerable.Repeat(-1L, graph.Sources.Count).ToArray();
        void Put(int at, int row, string what)
        {
            if (at < 0) return;
            rows[at] = row >= 0 ? row : throw new InvalidOperationException($"No sums of {what} were taken.");
        }
        Put(index.ResidStart, _embeddingRow, "the embeddings");
        for (int l = 0; l < _mlpRow.Length; l++)
        {
            if (l > 0) Put(index.BlockInput[l], _blockInputRow[l], $"block {l}'s input");
            Put(index.ResidMid[l], _residMidRow[l], $"Resid Mid {l}");
            Put(index.Mlp[l], _mlpRow[l], $"MLP {l}");
            if (index.FirstHead[l] >= 0)
                for (int h = 0; h < _nHeads; h++) Put(index.FirstHead[l] + h, _headRow[l] < 0 ? -1 : _headRow[l] + h, $"block {l}'s heads");
        }
        int missing = Array.IndexOf(rows, -1L);
        if (missing >= 0) throw new InvalidOperationException($"Source {graph.Sources[missing].Name} has no place in the forward pass to be summed.");
        using var scope = NewDisposeScope();
        return _sums.index_select(0, tensor(rows, device: _sums.device)).unsqueeze(1).DividedBy(count).to(dtype).MoveToOuterDisposeScope();
    }

    public void Dispose() => _sums?.Dispose();
}
