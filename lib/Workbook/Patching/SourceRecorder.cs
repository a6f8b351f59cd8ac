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
