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

    public void OnEmbedding(Tensor residStart) => _inner?.OnEmbedding(residStart);
    public void OnBlockInput(int layer, Tensor residPre) => _inner?.OnBlockInput(layer, residPre);
    public bool NeedsHeadResults(int layer) => _inner?.NeedsHeadResults(layer) ?? false;
    public void OnHeadResults(int layer, Tensor results) => _inner?.OnHeadResults(layer, results);
    public void OnResidMid(int layer, Tensor residMid) => _inner?.OnResidMid(layer, residMid);
    public void OnMlpOut(int layer, Tensor mlpOut) => _inner?.OnMlpOut(layer, mlpOut);
    public Tensor? AttentionInputs(int layer, Tensor residPre) => _inner?.AttentionInputs(layer, residPre);
    public SparseHeadInputs? SparseAttentionInputs(int layer, Tensor residPre) => _inner?.SparseAttentionInputs(layer, residPre);
    public Tensor? MlpInput(int layer, Tensor resid) => _inner?.MlpInput(layer, resid);
    public Tensor? ResidMid(int layer, Tensor residMid) => _inner?.ResidMid(layer, residMid);
    public Tensor? ResidPost(int layer, Tensor residPost) => _inner?.ResidPost(layer, residPost);
    public bool KeepsBlockTensors => _inner?.KeepsBlockTensors ?? false;

    public Tensor? FinalResidual(Tensor resid)
    {
        var final = _inner?.FinalResidual(resid) ?? resid;
        return final.narrow(1, final.shape[1] - 1, 1);
    }
}
