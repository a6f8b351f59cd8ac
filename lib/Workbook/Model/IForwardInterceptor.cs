using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>Where the model reports a graph source (AutoCircuit's names in brackets).</summary>
public enum SourceSite
{
    /// <summary>What enters block 0: token plus learned position embedding [B, T, D] (<c>Resid Start</c>).</summary>
    Embedding,
    /// <summary>A block's input, resid_pre [B, T, D], after any patch of the block before (node view: <c>Resid Post l−1</c>).</summary>
    BlockInput,
    /// <summary>Each head's output z·W_O without b_O, [n_heads, B, T, D] (<c>A{l}.{h}</c>); only when <see cref="IForwardInterceptor.NeedsHeadResults"/>.</summary>
    HeadResults,
    /// <summary>resid_mid of a sequential block [B, T, D], after any patch (node view: <c>Resid Mid l</c>).</summary>
    ResidMid,
    /// <summary>The MLP's output with b_out, [B, T, D] (<c>MLP l</c>).</summary>
    MlpOut,
}

/// <summary>
/// Heads of one block the model need not compute (see <see cref="IForwardInterceptor.ReplacedHeads"/>):
/// <paramref name="Computed"/> the heads it does compute, ascending, also as an int64 tensor on the model's device
/// (<paramref name="ComputedIndex"/>); <paramref name="Sum"/> the other heads' outputs summed, [B or 1, T or 1, D],
/// which takes their place in the attention output.
/// </summary>
public sealed record HeadReplacement(long[] Computed, Tensor ComputedIndex, Tensor Sum);

/// <summary>Where the model lets an interceptor replace what a destination reads.</summary>
public enum DestinationSite
{
    /// <summary>resid_mid as the rest of the block reads it (node view: <c>Resid Mid l</c>).</summary>
    ResidMid,
    /// <summary>The MLP's input before its LayerNorm (<c>MLP l</c>).</summary>
    MlpInput,
    /// <summary>The block's output (node view: <c>Resid Post l</c>, or <c>Resid End</c> for the last block).</summary>
    ResidPost,
    /// <summary>What enters the final LayerNorm (<c>Resid End</c>); its layer is n_layers.</summary>
    FinalResidual,
}

/// <summary>
/// The seam between the model and the patching engine: as a forward pass runs, the model reports every graph source
/// and asks, at every destination, whether to read something else. Every member has a default that does nothing.
/// Tensors passed in belong to the forward pass: keep them only for its duration. The engine's optimisations live on
/// its side of the seam (<c>Workbook.Patching</c>); <see cref="HeadInputs"/> is how it may hand heads their inputs.
/// </summary>
public interface IForwardInterceptor
{
    /// <summary>A source was computed at <paramref name="site"/> of block <paramref name="layer"/>.</summary>
    void OnSource(SourceSite site, int layer, Tensor value) { }

    /// <summary>Whether to report this block's per-head outputs (<see cref="SourceSite.HeadResults"/>; they cost a product of their own).</summary>
    bool NeedsHeadResults(int layer) => false;

    /// <summary>
    /// Heads of block <paramref name="layer"/> whose outputs every reader, at every position, takes from the engine
    /// instead: the model then computes only <see cref="HeadReplacement.Computed"/> (their Q, K, V, attention and
    /// output), adds <see cref="HeadReplacement.Sum"/> for the others, and reports only the computed heads'
    /// outputs (<see cref="SourceSite.HeadResults"/>, in that order) and inputs (<see cref="AttentionInputs"/>, numbered
    /// among them). Null: every head is computed. Asked once per block, before <see cref="AttentionInputs"/>; a pass
    /// with hooks or a cache refuses a replacement (they would see heads that were never computed).
    /// </summary>
    HeadReplacement? ReplacedHeads(int layer, Tensor residPre) => null;

    /// <summary>The inputs of block <paramref name="layer"/>'s heads, or null: every head reads <paramref name="residPre"/>.</summary>
    HeadInputs? AttentionInputs(int layer, Tensor residPre) => null;

    /// <summary>What the destination at <paramref name="site"/> reads instead of <paramref name="current"/>, or null to keep it.</summary>
    Tensor? Destination(DestinationSite site, int layer, Tensor current) => null;

    /// <summary>
    /// False when the interceptor keeps no tensor of a block beyond it (it copies what it needs): the model may then free
    /// each block's intermediates as the block ends. The default, true, keeps them until the forward's caller disposes them.
    /// </summary>
    bool KeepsBlockTensors => true;
}
