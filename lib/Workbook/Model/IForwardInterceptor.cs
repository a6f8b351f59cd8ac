using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>
/// The patching engine's view of a forward pass. The model reports every graph source as it is
/// computed and lets the interceptor rewrite every graph destination's input. All members have
/// defaults that do nothing, so an implementation overrides only what its graph needs.
///
/// Sources (AutoCircuit names): <c>Resid Start</c> = the embedding, <c>A{l}.{h}</c> = one head's output
/// z·W_O (without b_O), <c>MLP {l}</c> = the MLP output (with b_out). In the residual (node) view the
/// block inputs and resid_mid are sources too.
/// Tensors passed in belong to the forward pass: keep them only for its duration.
/// </summary>
public interface IForwardInterceptor
{
    /// <summary>The embedding that enters block 0 (token plus learned position embedding): <c>Resid Start</c>.</summary>
    void OnEmbedding(Tensor residStart) { }

    /// <summary>The input of block <paramref name="layer"/> (resid_pre), after any patch of the previous block.</summary>
    void OnBlockInput(int layer, Tensor residPre) { }

    /// <summary>Whether the interceptor needs the per-head outputs of this block's attention.</summary>
    bool NeedsHeadResults(int layer) => false;

    /// <summary>Per-head outputs of block <paramref name="layer"/>, laid out [n_heads, batch, seq, d_model].</summary>
    void OnHeadResults(int layer, Tensor results) { }

    /// <summary>resid_mid of a sequential block (node view source <c>Resid Mid {l}</c>), after any patch.</summary>
    void OnResidMid(int layer, Tensor residMid) { }

    /// <summary>Output of block <paramref name="layer"/>'s MLP, [batch, seq, d_model].</summary>
    void OnMlpOut(int layer, Tensor mlpOut) { }

    /// <summary>
    /// Per-head inputs of block <paramref name="layer"/>'s attention, laid out [k, n_heads, batch, seq, d_model]
    /// with k = 3 (separate Q, K, V inputs) or k = 1 (one input per head feeding Q, K and V); or null to let
    /// every head read <paramref name="residPre"/> unchanged.
    /// </summary>
    Tensor? AttentionInputs(int layer, Tensor residPre) => null;

    /// <summary>
    /// Like <see cref="AttentionInputs"/>, for the common case where most heads read one shared residual and only a
    /// few read their own: lets the model run the shared heads through one fused projection. Return null to fall
    /// back to <see cref="AttentionInputs"/>.
    /// </summary>
    SparseHeadInputs? SparseAttentionInputs(int layer, Tensor residPre) => null;

    /// <summary>The MLP's input (before its LayerNorm), or null to keep <paramref name="resid"/>.</summary>
    Tensor? MlpInput(int layer, Tensor resid) => null;

    /// <summary>The residual that enters the final LayerNorm (<c>Resid End</c>), or null to keep it.</summary>
    Tensor? FinalResidual(Tensor resid) => null;

    /// <summary>Node view: the value of resid_mid (<c>Resid Mid {l}</c>) given its unpatched value, or null to keep it.</summary>
    Tensor? ResidMid(int layer, Tensor residMid) => null;

    /// <summary>Node view: the block's output (<c>Resid Post {l}</c>, or <c>Resid End</c> for the last block), or null to keep it.</summary>
    Tensor? ResidPost(int layer, Tensor residPost) => null;

    /// <summary>
    /// False when the interceptor keeps no tensor the model creates inside a block beyond that block (it copies what it
    /// needs): the model may then free each block's intermediates as the block ends instead of with the whole forward.
    /// The default, true, keeps them all until the forward's caller disposes them.
    /// </summary>
    bool KeepsBlockTensors => true;
}

/// <summary>
/// Attention inputs where every head input reads <see cref="Shared"/> [B, T, D] except the rows listed in
/// <see cref="Rows"/> (row = kind · n_heads + head, kind 0/1/2 = Q/K/V, or 0 when <see cref="Kinds"/> is 1), whose
/// inputs are <see cref="RowInputs"/> [rows, B, T, D].
/// </summary>
public sealed record SparseHeadInputs(Tensor Shared, int Kinds, long[] Rows, Tensor? RowInputs)
{
    /// <summary>The rows' indices on the device, prepared ahead of the forward pass (null: the model builds them).</summary>
    public SparseHeadIndex? Index { get; init; }

    /// <summary>Every row is listed, in order: the inputs are simply dense, [Kinds · n_heads, B, T, D].</summary>
    public bool IsDense(int nHeads)
    {
        if (Rows.Length != Kinds * nHeads) return false;
        for (int i = 0; i < Rows.Length; i++)
            if (Rows[i] != i) return false;
        return true;
    }
}

/// <summary>
/// For each of Q, K and V, which <see cref="SparseHeadInputs.Rows"/> feed it: the heads they belong to and, when only
/// some rows feed it, their positions among the rows, as int64 tensors on the model's device. Building them before a
/// forward pass spares it host-to-device copies, each of which waits for the GPU to finish its queued work.
/// </summary>
public sealed class SparseHeadIndex
{
    /// <summary>Rows feeding one kind: <paramref name="Heads"/> [count] head ids; <paramref name="Selection"/> [count] row positions, or null for all rows.</summary>
    public sealed record KindRows(int Count, Tensor Heads, Tensor? Selection);

    readonly KindRows?[] _kinds;

    public SparseHeadIndex(IReadOnlyList<KindRows?> kinds)
    {
        if (kinds.Count != 3) throw new ArgumentException("One entry per Q, K and V.", nameof(kinds));
        _kinds = kinds.ToArray();
    }

    /// <summary>The rows feeding kind 0, 1 or 2 (Q, K, V), or null when none does.</summary>
    public KindRows? ForKind(int kind) => _kinds[kind];

    /// <summary>The host-side layout: per kind, the head ids and the selected row positions (null when every row is selected).</summary>
    public static (long[] Heads, long[]? Selection)?[] Layout(long[] rows, int kinds, int nHeads)
    {
        var layout = new (long[] Heads, long[]? Selection)?[3];
        for (int kind = 0; kind < 3; kind++)
        {
            // Rows of this kind (or every row when one input feeds Q, K and V).
            var selected = Enumerable.Range(0, rows.Length).Where(i => kinds == 1 || rows[i] / nHeads == kind).ToArray();
            if (selected.Length == 0) continue;
            layout[kind] = (selected.Select(i => rows[i] % nHeads).ToArray(),
                selected.Length == rows.Length ? null : selected.Select(i => (long)i).ToArray());
        }
        return layout;
    }

    public static SparseHeadIndex For(long[] rows, int kinds, int nHeads, Device device) =>
        new(Layout(rows, kinds, nHeads).Select(k => k is { } l
            ? new KindRows(l.Heads.Length, tensor(l.Heads, device: device), l.Selection is null ? null : tensor(l.Selection, device: device))
            : null).ToArray());
}
