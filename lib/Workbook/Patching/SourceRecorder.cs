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
