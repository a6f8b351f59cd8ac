using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Tests.Support;

/// <summary>
/// An obviously-correct, slow factorized forward pass written independently of HookedTransformer.Forward:
/// every destination's input is rebuilt as an explicit sum over its incoming sources, each taken as
/// mask · patch + (1 − mask) · current, plus the attention output biases of earlier blocks. Heads are computed
/// one at a time. Used as the oracle for the patching engine.
/// </summary>
public static class SlowFactorizedForward
{
    /// <param name="mask">Per edge index: a [B, T] tensor of mask values, or null for 0.</param>
    /// <param name="patch">Per source [S, B|1, T|1, D] patch values, or null for zero.</param>
    public static Tensor Run(HookedTransformer m, ComputationGraph g, Tensor tokens, Func<int, Tensor?> mask, Tensor? patch)
    {
        var c = m.Config;
        long B = tokens.shape[0], T = tokens.shape[1];
        var current = new Tensor[g.Sources.Count];
        var emb = m.embed.W_E[tokens];
        if (m.pos_embed != null) emb = emb.Plus(m.pos_embed.W_pos[..(int)T].unsqueeze(0));
        current[g.Source("Resid Start").Index] = emb;

        Tensor Input(DestinationNode d)
        {
            Tensor x = zeros(B, T, c.DModel);
            foreach (var e in g.EdgesInto(d))
            {
                var s = e.Source.Index;
                var mk = mask(e.Index);
                if (mk is null) { x = x.Plus(current[s]); continue; }
                var p = patch is null ? zeros(B, T, c.DModel) : patch[s].expand(B, T, c.DModel);
                var mk3 = mk.unsqueeze(-1);
                x = x.Plus(mk3 * p).Plus(mk3.SubtractedFrom(1) * current[s]);
            }
            // b_O is no source: it is in the residual for every destination after that block's heads.
            var firstHeadOfBlock = g.Sources.Where(s => s.Kind == NodeKind.Head && s.Head == 0);
            foreach (var h in firstHeadOfBlock)
                if (h.Layer < d.Layer) x = x.Plus(m.blocks[h.Block].attn.b_O);
            return x;
        }

        Tensor Ln(Tensor x, LayerNormWeights? ln)
        {
            if (ln is null) return x;
            var mu = x.mean(new long[] { -1 }, keepdim: true);
            var v = (x - mu).Power(2).mean(new long[] { -1 }, keepdim: true);
            return ((x - mu) / v.Plus(c.LayerNormEps).sqrt() * ln.w).Plus(ln.b);
        }

        Tensor Rotate(Tensor x) // [B, T, dh], NeoX rotate-half on the first RotaryDim dims
        {
            if (c.Positional != PositionalEmbedding.Rotary) return x;
            int r = c.RotaryDim, half = r / 2;
            var pos = arange(T, dtype: ScalarType.Float64).unsqueeze(1);
            var freq = TensorMath.PowerOf(c.RotaryBase, arange(0, half, dtype: ScalarType.Float64).Times(-2.0 / r)).unsqueeze(0);
            var ang = (pos * freq).to(ScalarType.Float32); // [T, half]
            var x1 = x[.., .., ..half];
            var x2 = x[.., .., half..r];
            var rot = cat(new[] { x1 * ang.cos() - x2 * ang.sin(), (x2 * ang.cos()).Plus(x1 * ang.sin()) }, -1);
            return r < c.DHead ? cat(new[] { rot, x[.., .., r..] }, -1) : rot;
        }

        Tensor Act(Tensor x) => c.Activation switch
        {
            ActivationFunction.Relu => x.ClampedTo(0, double.PositiveInfinity),
            ActivationFunction.Gelu => x.Times(0.5) * special.erf(x.DividedBy(Math.Sqrt(2))).Plus(1),
            _ => x.Times(0.5) * tanh(x.Plus((x * x * x).Times(0.044715)).Times(Math.Sqrt(2 / Math.PI))).Plus(1),
        };

        string[] kinds = g.SeparateQkv ? new[] { "Q", "K", "V" } : new[] { "", "", "" };
        for (int b = 0; b < c.NLayers; b++)
        {
            var w = m.blocks[b];
            var results = new Tensor[c.NHeads];
            for (int h = 0; h < c.NHeads; h++)
            {
                string Name(string k) => k.Length == 0 ? $"A{b}.{h}" : $"A{b}.{h}.{k}";
                var q = Rotate(Ln(Input(g.Destination(Name(kinds[0]))), w.ln1).matmul(w.attn.W_Q[h]).Plus(w.attn.b_Q[h]));
                var k = Rotate(Ln(Input(g.Destination(Name(kinds[1]))), w.ln1).matmul(w.attn.W_K[h]).Plus(w.attn.b_K[h]));
                var v = Ln(Input(g.Destination(Name(kinds[2]))), w.ln1).matmul(w.attn.W_V[h]).Plus(w.attn.b_V[h]);
                var scores = q.matmul(k.transpose(1, 2)).DividedBy(Math.Sqrt(c.DHead));
                if (c.Causal) scores = scores.FilledWhere(ones(T, T, dtype: ScalarType.Bool).triu(1), double.NegativeInfinity);
                results[h] = scores.softmax(-1).matmul(v).matmul(w.attn.W_O[h]);
            }
            for (int h = 0; h < c.NHeads; h++) current[g.Source($"A{b}.{h}").Index] = results[h];
            if (w.mlp != null)
            {
                var x = Ln(Input(g.Destination($"MLP {b}")), w.ln2);
                current[g.Source($"MLP {b}").Index] = Act(x.matmul(w.mlp.W_in).Plus(w.mlp.b_in)).matmul(w.mlp.W_out).Plus(w.mlp.b_out);
            }
        }
        var final = Ln(Input(g.Destination("Resid End")), m.ln_final);
        return final.matmul(m.W_U).Plus(m.unembed.b_U);
    }
}
