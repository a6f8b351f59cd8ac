using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Tests.Support;

/// <summary>
/// A slow, literal implementation of the patching equation (spec 0.4) on the factorized graph, used as an
/// oracle: every destination input is rebuilt as the sum, over its incoming edges, of the source's current
/// output (edge kept) or its patch value (edge ablated), plus the attention output biases already in the
/// residual. Heads are computed one at a time from their own Q, K and V inputs, in float64, straight from the
/// model's weights. It shares nothing with <see cref="HookedTransformer.Forward"/> but the weights and the graph.
/// Supports learned positions and sequential or attention-only blocks (GPT-2, attn-only, Tracr).
/// </summary>
public static class ReferencePatching
{
    /// <summary>The result of one reference pass: outputs [B, T, V] and every source's output [n_src, B, T, D].</summary>
    public sealed record Pass(Tensor Logits, Tensor SourceOutputs);

    /// <summary>Runs with no edge ablated.</summary>
    public static Pass Clean(HookedTransformer model, ComputationGraph graph, Tensor tokens) =>
        Run(model, graph, tokens, _ => false, patch: null);

    /// <summary>
    /// Runs on <paramref name="tokens"/> with every edge for which <paramref name="ablated"/> is true reading the
    /// source's value from <paramref name="patch"/> ([n_src, B, T, D]; null means zero).
    /// </summary>
    public static Pass Run(HookedTransformer model, ComputationGraph graph, Tensor tokens, Func<Edge, bool> ablated, Tensor? patch)
    {
        var c = model.Config;
        if (graph.View != GraphView.Factorized) throw new NotSupportedException("The reference handles the factorized graph.");
        if (c.Positional != PositionalEmbedding.Learned || c.ParallelAttnMlp) throw new NotSupportedException("The reference handles learned positions and sequential blocks.");
        using var scope = NewDisposeScope();
        var dt = ScalarType.Float64;
        Tensor W(Tensor t) => t.detach().to(dt).cpu();
        tokens = tokens.cpu().to(ScalarType.Int64);
        long B = tokens.shape[0], T = tokens.shape[1];
        int D = c.DModel;

        var current = new Tensor[graph.Sources.Count];
        Tensor PatchOf(int s) => patch is null ? zeros(B, T, D, dtype: dt) : W(patch[s]);

        // Input of a destination: Σ over incoming edges of (ablated ? patch : current) + b_O of every block
        // whose heads feed it (b_O is in the residual but is no source).
        Tensor Input(DestinationNode dest)
        {
            var sum = zeros(B, T, D, dtype: dt);
            var blocksWithHeads = new HashSet<int>();
            foreach (var e in graph.EdgesInto(dest))
            {
                int s = e.Source.Index;
                sum = sum.Plus(ablated(e) ? PatchOf(s) : current[s]);
                if (e.Source.Kind == NodeKind.Head) blocksWithHeads.Add(e.Source.Block);
            }
            foreach (int b in blocksWithHeads) sum = sum.Plus(W(model.blocks[b].attn.b_O));
            return sum;
        }

        Tensor LayerNorm(Tensor x, Workbook.Model.LayerNormWeights? ln)
        {
            if (ln is null) return x;
            var centred = x - x.mean(new long[] { -1 }, keepdim: true);
            var variance = centred.Power(2).mean(new long[] { -1 }, keepdim: true);
            return (centred / variance.Plus(c.LayerNormEps).sqrt() * W(ln.w)).Plus(W(ln.b));
        }

        Tensor Act(Tensor x) => c.Activation switch
        {
            ActivationFunction.Relu => x.ClampedTo(0, double.PositiveInfinity),
            ActivationFunction.Gelu => x.Times(0.5) * special.erf(x.DividedBy(Math.Sqrt(2))).Plus(1),
            ActivationFunction.GeluNew => x.Times(0.5) * tanh(x.Plus(x.Power(3).Times(0.044715)).Times(Math.Sqrt(2 / Math.PI))).Plus(1),
            _ => throw new NotSupportedException(c.Activation.ToString()),
        };

        current[graph.Source("Resid Start").Index] = W(model.embed.W_E).index_select(0, tokens.reshape(-1)).view(B, T, D)
                                                   .Plus(W(model.pos_embed!.W_pos).narrow(0, 0, T).unsqueeze(0));
        for (int l = 0; l < c.NLayers; l++)
        {
            var blk = model.blocks[l];
            var a = blk.attn;
            for (int h = 0; h < c.NHeads; h++)
            {
                Tensor xq, xk, xv;
                if (graph.SeparateQkv)
                {
                    xq = Input(graph.Destination($"A{l}.{h}.Q"));
                    xk = Input(graph.Destination($"A{l}.{h}.K"));
                    xv = Input(graph.Destination($"A{l}.{h}.V"));
                }
                else
                {
                    xq = xk = xv = Input(graph.Destination($"A{l}.{h}"));
                }
                var q = LayerNorm(xq, blk.ln1).matmul(W(a.W_Q[h])).Plus(W(a.b_Q[h]));   // [B, T, dh]
                var k = LayerNorm(xk, blk.ln1).matmul(W(a.W_K[h])).Plus(W(a.b_K[h]));
                var v = LayerNorm(xv, blk.ln1).matmul(W(a.W_V[h])).Plus(W(a.b_V[h]));
                var scores = q.matmul(k.transpose(1, 2)).DividedBy(Math.Sqrt(c.DHead));        // [B, Tq, Tk]
                if (c.Causal) scores = scores.FilledWhere(ones(T, T, dtype: ScalarType.Bool).triu(1), double.NegativeInfinity);
                var z = scores.softmax(-1).matmul(v);
                current[graph.Source($"A{l}.{h}").Index] = z.matmul(W(a.W_O[h]));
            }
            if (c.HasMlp)
            {
                var m = blk.mlp!;
                var x = LayerNorm(Input(graph.Destination($"MLP {l}")), blk.ln2);
                current[graph.Source($"MLP {l}").Index] = Act(x.matmul(W(m.W_in)).Plus(W(m.b_in))).matmul(W(m.W_out)).Plus(W(m.b_out));
            }
        }
        var final = LayerNorm(Input(graph.Destination("Resid End")), model.ln_final);
        var logits = final.matmul(W(model.W_U)).Plus(W(model.unembed.b_U));
        var sources = stack(current, 0);
        return new Pass(logits.MoveToOuterDisposeScope(), sources.MoveToOuterDisposeScope());
    }
}
