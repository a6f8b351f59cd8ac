using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>
/// Wraps an interceptor (or none) so that the forward pass computes logits at the last position only ([B, 1, V]): the
/// final LayerNorm and the unembedding, a third of GPT-2 small's work per token, run for the one position a
/// last-token metric reads. Everything else is passed to the inner interceptor unchanged.
/// </summary>
public sealed class LastPositionOnly(IForwardInterceptor? inner = null) : IForwardInterceptor
{
    readonly IForwardInterceptor? _inner = inner;

    public void OnSource(SourceSite site, int layer, Tensor value) => _inner?.OnSource(site, layer, value);
    public bool NeedsHeadResults(int layer) => _inner?.NeedsHeadResults(layer) ?? false;
    public HeadReplacement? ReplacedHeads(int layer, Tensor residPre) => _inner?.ReplacedHeads(layer, residPre);
    public HeadInputs? AttentionInputs(int layer, Tensor residPre) => _inner?.AttentionInputs(layer, residPre);

    public Tensor? Destination(DestinationSite site, int layer, Tensor current)
    {
        var read = _inner?.Destination(site, layer, current);
        if (site != DestinationSite.FinalResidual) return read;
        var final = read ?? current;
        return final.narrow(1, final.shape[1] - 1, 1);
    }

    /// <summary>As the inner interceptor; with none, nothing is kept (as for a forward pass without an interceptor).</summary>
    public bool KeepsBlockTensors => _inner?.KeepsBlockTensors ?? false;
}
