using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>Queries, keys and values of a block's heads, each [batch, seq, n_heads, d_head].</summary>
public sealed record QueryKeyValue(Tensor Q, Tensor K, Tensor V);

/// <summary>
/// The residual-stream inputs of a block's heads, one per head (feeding its Q, K and V) or one per head and Q/K/V:
/// TransformerLens's split inputs. An interceptor may also compute the heads' queries, keys and values itself when it
/// knows a cheaper way than projecting every input (<see cref="Project"/>); hooks on the inputs always see them dense.
/// </summary>
public abstract class HeadInputs
{
    /// <summary>3: separate Q, K and V inputs per head; 1: one input per head for all three.</summary>
    public abstract int Kinds { get; }

    /// <summary>The inputs, [Kinds, n_heads, batch, seq, d_model].</summary>
    public abstract Tensor Dense(int nHeads);

    /// <summary>The heads' queries, keys and values computed directly, or null to project <see cref="Dense"/>.</summary>
    public virtual QueryKeyValue? Project(AttentionProjection projection) => null;

    /// <summary>Inputs given as one dense tensor [1 or 3, n_heads, batch, seq, d_model].</summary>
    public static HeadInputs FromDense(Tensor dense) => new DenseInputs(dense);

    sealed class DenseInputs(Tensor dense) : HeadInputs
    {
        public override int Kinds => (int)dense.shape[0];
        public override Tensor Dense(int nHeads) => dense;
    }
}

/// <summary>
/// One block's attention weights for the heads a pass computes, for interceptors that project head inputs themselves:
/// LayerNorm 1 (without hooks) and the Q, K, V projections. Kind 0, 1, 2 is Q, K, V. When the engine replaces some heads
/// (<see cref="IForwardInterceptor.ReplacedHeads"/>) the weights are the computed heads' only, and head i is the i-th
/// computed head.
/// </summary>
public sealed class AttentionProjection
{
    readonly TransformerConfig _c;
    readonly BlockWeights _w;
    readonly Tensor? _heads;
    readonly Tensor?[] _weights = new Tensor?[4], _biases = new Tensor?[3];

    internal AttentionProjection(TransformerConfig config, BlockWeights weights, HeadReplacement? replaced = null)
    {
        _c = config;
        _w = weights;
        _heads = replaced?.ComputedIndex;
        NHeads = replaced?.Computed.Length ?? config.NHeads;
    }

    /// <summary>The number of heads computed (all of the block's unless some are replaced).</summary>
    public int NHeads { get; }
    public int DHead => _c.DHead;
    public int DModel => _c.DModel;

    /// <summary>LayerNorm 1 over the last dimension (the identity for models without LayerNorm).</summary>
    public Tensor Normalize(Tensor x) =>
        _w.ln1 is { } ln ? nn.functional.layer_norm(x, new long[] { _c.DModel }, ln.w, ln.b, _c.LayerNormEps) : x;

    /// <summary>The weight [n_heads, d_model, d_head] of kind 0, 1 or 2 (Q, K, V).</summary>
    public Tensor Weight(int kind) => Computed(_weights, kind, kind switch
    {
        0 => _w.attn.W_Q, 1 => _w.attn.W_K, 2 => _w.attn.W_V, _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    });

    /// <summary>The bias [n_heads, d_head] of kind 0, 1 or 2 (Q, K, V).</summary>
    public Tensor Bias(int kind) => Computed(_biases, kind, kind switch
    {
        0 => _w.attn.b_Q, 1 => _w.attn.b_K, 2 => _w.attn.b_V, _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    });

    /// <summary>The output weight [n_heads, d_head, d_model].</summary>
    public Tensor Output => Computed(_weights, 3, _w.attn.W_O);

    // The computed heads' rows of a weight, gathered once per block and pass (the projection lives for one block).
    Tensor Computed(Tensor?[] cache, int slot, Tensor all) => _heads is null ? all : cache[slot] ??= all.index_select(0, _heads);

    /// <summary>Every head's projection of one shared normalised input [B, T, D] in one product: [B, T, n_heads, d_head].</summary>
    public Tensor ProjectShared(Tensor normed, int kind)
    {
        var (w, b) = (Weight(kind), Bias(kind));
        // The rearranged copy of W is freed at once: held until the pass ended, the copies of every layer's W_Q/W_K/W_V
        // added 2.5 GB to a Pythia-2.8B forward.
        using var flat = w.permute(1, 0, 2).reshape(_c.DModel, NHeads * _c.DHead);
        return normed.matmul(flat).view(normed.shape[0], normed.shape[1], NHeads, _c.DHead).PlusIntoFresh(b);
    }
}
