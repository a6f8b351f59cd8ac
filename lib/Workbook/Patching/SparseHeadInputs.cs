using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// The edge patcher's head inputs when most heads read one shared residual: every head input reads
/// <see cref="Shared"/> [B, T, D] except the rows listed in <see cref="Rows"/> (row = kind · n_heads + head, kind 0/1/2 =
/// Q/K/V, or 0 when <see cref="Kinds"/> is 1), whose inputs are <see cref="RowInputs"/> [rows, B, T, D]. The shared heads
/// then go through one fused projection and only the listed rows through their own (<see cref="Project"/>).
/// </summary>
internal sealed class SparseHeadInputs(Tensor shared, int kinds, long[] rows, Tensor? rowInputs, SparseHeadIndex? index) : HeadInputs
{
    public Tensor Shared => shared;
    public long[] Rows => rows;
    public Tensor? RowInputs => rowInputs;
    public override int Kinds => kinds;

    /// <summary>Every row is listed, in order: the inputs are simply dense, [Kinds · n_heads, B, T, D].</summary>
    public bool IsDense(int nHeads)
    {
        if (rows.Length != kinds * nHeads) return false;
        for (int i = 0; i < rows.Length; i++)
            if (rows[i] != i) return false;
        return true;
    }

    public override Tensor Dense(int nHeads)
    {
        long B = shared.shape[0], T = shared.shape[1], D = shared.shape[2];
        if (IsDense(nHeads)) return rowInputs!.view(kinds, nHeads, B, T, D);
        var dense = shared.unsqueeze(0).expand(kinds * nHeads, B, T, D).contiguous();
        if (rows.Length > 0) dense.index_copy_(0, tensor(rows, device: dense.device), rowInputs!);
        return dense.view(kinds, nHeads, B, T, D);
    }

    /// <summary>Q, K, V: one fused projection of the shared input, then the listed rows on their own (null when all are listed).</summary>
    public override QueryKeyValue? Project(AttentionProjection p)
    {
        if (IsDense(p.NHeads)) return null;
        long B = shared.shape[0], T = shared.shape[1];
        var x = p.Normalize(shared);
        var outputs = new[] { p.ProjectShared(x, 0), p.ProjectShared(x, 1), p.ProjectShared(x, 2) };
        if (rows.Length == 0) return new QueryKeyValue(outputs[0], outputs[1], outputs[2]);
        int n = rows.Length;
        var normed = p.Normalize(rowInputs!.reshape(n, B * T, p.DModel));
        var heads = index ?? SparseHeadIndex.For(rows, kinds, p.NHeads, x.device);
        for (int kind = 0; kind < 3; kind++)
        {
            if (heads.ForKind(kind) is not { } selected) continue;
            var rowsOfKind = selected.Selection is null ? normed : normed.index_select(0, selected.Selection);
            var projected = bmm(rowsOfKind, p.Weight(kind).index_select(0, selected.Heads)).Plus(p.Bias(kind).index_select(0, selected.Heads).unsqueeze(1)); // [m, B*T, dh]
            outputs[kind] = outputs[kind].index_copy(2, selected.Heads, projected.view(selected.Count, B, T, p.DHead).permute(1, 2, 0, 3));
        }
        return new QueryKeyValue(outputs[0], outputs[1], outputs[2]);
    }
}

/// <summary>
/// For each of Q, K and V, which <see cref="SparseHeadInputs.Rows"/> feed it: the heads they belong to and, when only
/// some rows feed it, their positions among the rows, as int64 tensors on the model's device. Building them before a
/// forward pass spares it host-to-device copies, each of which waits for the GPU to finish its queued work.
/// </summary>
internal sealed class SparseHeadIndex
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
    public static HostKindRows?[] Layout(long[] rows, int kinds, int nHeads)
    {
        var layout = new HostKindRows?[3];
        for (int kind = 0; kind < 3; kind++)
        {
            // Rows of this kind (or every row when one input feeds Q, K and V).
            var selected = Enumerable.Range(0, rows.Length).Where(i => kinds == 1 || rows[i] / nHeads == kind).ToArray();
            if (selected.Length == 0) continue;
            layout[kind] = new HostKindRows(selected.Select(i => rows[i] % nHeads).ToArray(),
                selected.Length == rows.Length ? null : selected.Select(i => (long)i).ToArray());
        }
        return layout;
    }

    /// <summary>One kind's rows on the host: head ids, and row positions (null when every row is selected).</summary>
    public sealed record HostKindRows(long[] Heads, long[]? Selection);

    public static SparseHeadIndex For(long[] rows, int kinds, int nHeads, Device device) =>
        new(Layout(rows, kinds, nHeads).Select(k => k is { } l
            ? new KindRows(l.Heads.Length, tensor(l.Heads, device: device), l.Selection is null ? null : tensor(l.Selection, device: device))
            : null).ToArray());
}
