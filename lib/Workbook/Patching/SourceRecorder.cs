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
/// Sums every source's output over the prompts of unpatched forward passes, in float64, as each pass computes it: per
/// site a [seq, d_model] running sum ([heads, seq, d_model] for a block's heads), shared by every graph view that has that
/// source. <see cref="Mean"/> lays the sums out as one view's [n_sources, 1, seq, d_model] means. Each batch's sum over
/// its prompts is taken as <c>x.to(float64).sum(batch axis)</c> and added to the running sum, the same arithmetic as
/// summing a recording of the batch, so the means are those of recording every source first.
/// </summary>
internal sealed class SourceSums : IForwardInterceptor, IDisposable
{
    readonly IReadOnlyList<SourceIndex> _indexes;
    readonly bool[] _heads;
    Tensor? _embedding;
    readonly Tensor?[] _blockInput, _residMid, _mlp, _headSums;

    public SourceSums(IReadOnlyList<ComputationGraph> graphs)
    {
        int layers = graphs[0].Config.NLayers;
        _indexes = graphs.Select(g => new SourceIndex(g)).ToList();
        _heads = Enumerable.Range(0, layers).Select(l => _indexes.Any(i => i.FirstHead[l] >= 0)).ToArray();
        _blockInput = new Tensor?[layers];
        _residMid = new Tensor?[layers];
        _mlp = new Tensor?[layers];
        _headSums = new Tensor?[layers];
    }

    bool Wanted(Func<SourceIndex, int> site) => _indexes.Any(i => site(i) >= 0);

    static void Accumulate(ref Tensor? sum, Tensor value, int batchAxis)
    {
        using var scope = NewDisposeScope();
        var batchSum = value.to(ScalarType.Float64).sum(batchAxis);
        if (sum is null) sum = batchSum.DetachFromDisposeScope();
        else sum.add_(batchSum);
    }

    public bool NeedsHeadResults(int layer) => _heads[layer];

    public bool KeepsBlockTensors => false;

    public void OnSource(SourceSite site, int layer, Tensor value)
    {
        using var _ = no_grad();
        switch (site)
        {
            case SourceSite.Embedding when Wanted(i => i.ResidStart): Accumulate(ref _embedding, value, 0); break;
            case SourceSite.BlockInput when layer > 0 && Wanted(i => i.BlockInput[layer]): Accumulate(ref _blockInput[layer], value, 0); break;
            case SourceSite.ResidMid when Wanted(i => i.ResidMid[layer]): Accumulate(ref _residMid[layer], value, 0); break;
            case SourceSite.MlpOut when Wanted(i => i.Mlp[layer]): Accumulate(ref _mlp[layer], value, 0); break;
            case SourceSite.HeadResults when _heads[layer]: Accumulate(ref _headSums[layer], value, 1); break;
        }
    }

    /// <summary>The logits of a pass that only sums sources are not used: compute them for one position only.</summary>
    public Tensor? Destination(DestinationSite site, int layer, Tensor current) =>
        site == DestinationSite.FinalResidual ? current.narrow(1, current.shape[1] - 1, 1) : null;

    /// <summary>Runs <paramref name="tokens"/> unpatched and adds its sources to the sums.</summary>
    public void Add(HookedTransformer model, Tensor tokens)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        model.Forward(tokens, null, this);
    }

    /// <summary>The means of <paramref name="graph"/>'s sources over <paramref name="count"/> prompts: [n_sources, 1, seq, d_model] in <paramref name="dtype"/>, in the caller's dispose scope.</summary>
    public Tensor Mean(ComputationGraph graph, int count, ScalarType dtype)
    {
        var index = new SourceIndex(graph);
        var rows = new Tensor?[graph.Sources.Count];
        void Put(int at, Tensor? sum, string what)
        {
            if (at < 0) return;
            rows[at] = (sum ?? throw new InvalidOperationException($"No sums of {what} were taken.")).unsqueeze(0);
        }
        Put(index.ResidStart, _embedding, "the embeddings");
        for (int l = 0; l < _mlp.Length; l++)
        {
            if (l > 0) Put(index.BlockInput[l], _blockInput[l], $"block {l}'s input");
            Put(index.ResidMid[l], _residMid[l], $"Resid Mid {l}");
            Put(index.Mlp[l], _mlp[l], $"MLP {l}");
            if (index.FirstHead[l] >= 0)
            {
                var heads = _headSums[l] ?? throw new InvalidOperationException($"No sums of block {l}'s heads were taken.");
                for (int h = 0; h < heads.shape[0]; h++) rows[index.FirstHead[l] + h] = heads[h].unsqueeze(0);
            }
        }
        int missing = Array.FindIndex(rows, r => r is null);
        if (missing >= 0) throw new InvalidOperationException($"Source {graph.Sources[missing].Name} has no place in the forward pass to be summed.");
        using var scope = NewDisposeScope();
        return stack(rows!).DividedBy(count).to(dtype).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _embedding?.Dispose();
        foreach (var t in _blockInput.Concat(_residMid).Concat(_mlp).Concat(_headSums)) t?.Dispose();
    }
}
