using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Workbook.Model;

// Weight containers named exactly like TransformerLens state-dict keys (embed.W_E, blocks.0.attn.W_Q,
// blocks.0.ln1.w, ...), so that checkpoints map onto them by name. They hold parameters only; the
// computation lives in HookedTransformer.Forward.

internal static class Weights
{
    internal static Parameter New(Device device, ScalarType dtype, params long[] shape) =>
        new(torch.zeros(shape, dtype: dtype, device: device), requires_grad: false);
}

public sealed class EmbedWeights : nn.Module
{
    public Parameter W_E { get; }
    internal EmbedWeights(TransformerConfig c, Device d, ScalarType t) : base("embed")
    {
        W_E = Weights.New(d, t, c.DVocab, c.DModel);
        register_parameter("W_E", W_E);
    }
}

public sealed class PosEmbedWeights : nn.Module
{
    public Parameter W_pos { get; }
    internal PosEmbedWeights(TransformerConfig c, Device d, ScalarType t) : base("pos_embed")
    {
        W_pos = Weights.New(d, t, c.NCtx, c.DModel);
        register_parameter("W_pos", W_pos);
    }
}

public sealed class LayerNormWeights : nn.Module
{
    public Parameter w { get; }
    public Parameter b { get; }
    internal LayerNormWeights(string name, TransformerConfig c, Device d, ScalarType t) : base(name)
    {
        w = Weights.New(d, t, c.DModel);
        b = Weights.New(d, t, c.DModel);
        using (torch.no_grad()) w.fill_(1.0);
        register_parameter("w", w);
        register_parameter("b", b);
    }
}

public sealed class AttentionWeights : nn.Module
{
    public Parameter W_Q { get; }
    public Parameter W_K { get; }
    public Parameter W_V { get; }
    public Parameter W_O { get; }
    public Parameter b_Q { get; }
    public Parameter b_K { get; }
    public Parameter b_V { get; }
    public Parameter b_O { get; }

    internal AttentionWeights(TransformerConfig c, Device d, ScalarType t) : base("attn")
    {
        W_Q = Weights.New(d, t, c.NHeads, c.DModel, c.DHead);
        W_K = Weights.New(d, t, c.NHeads, c.DModel, c.DHead);
        W_V = Weights.New(d, t, c.NHeads, c.DModel, c.DHead);
        W_O = Weights.New(d, t, c.NHeads, c.DHead, c.DModel);
        b_Q = Weights.New(d, t, c.NHeads, c.DHead);
        b_K = Weights.New(d, t, c.NHeads, c.DHead);
        b_V = Weights.New(d, t, c.NHeads, c.DHead);
        b_O = Weights.New(d, t, c.DModel);
        register_parameter("W_Q", W_Q); register_parameter("W_K", W_K);
        register_parameter("W_V", W_V); register_parameter("W_O", W_O);
        register_parameter("b_Q", b_Q); register_parameter("b_K", b_K);
        register_parameter("b_V", b_V); register_parameter("b_O", b_O);
    }
}

public sealed class MlpWeights : nn.Module
{
    public Parameter W_in { get; }
    public Parameter b_in { get; }
    public Parameter W_out { get; }
    public Parameter b_out { get; }

    internal MlpWeights(TransformerConfig c, Device d, ScalarType t) : base("mlp")
    {
        W_in = Weights.New(d, t, c.DModel, c.DMlp);
        b_in = Weights.New(d, t, c.DMlp);
        W_out = Weights.New(d, t, c.DMlp, c.DModel);
        b_out = Weights.New(d, t, c.DModel);
        register_parameter("W_in", W_in); register_parameter("b_in", b_in);
        register_parameter("W_out", W_out); register_parameter("b_out", b_out);
    }
}

public sealed class BlockWeights : nn.Module
{
    public LayerNormWeights? ln1 { get; }
    public AttentionWeights attn { get; }
    public LayerNormWeights? ln2 { get; }
    public MlpWeights? mlp { get; }

    internal BlockWeights(int layer, TransformerConfig c, Device d, ScalarType t) : base($"block{layer}")
    {
        attn = new AttentionWeights(c, d, t);
        if (c.UseLayerNorm)
        {
            ln1 = new LayerNormWeights("ln1", c, d, t);
            register_module("ln1", ln1);
        }
        register_module("attn", attn);
        if (c.HasMlp)
        {
            mlp = new MlpWeights(c, d, t);
            if (c.UseLayerNorm)
            {
                ln2 = new LayerNormWeights("ln2", c, d, t);
                register_module("ln2", ln2);
            }
            register_module("mlp", mlp);
        }
    }
}

public sealed class UnembedWeights : nn.Module
{
    /// <summary>[d_model, d_vocab_out]; null when tied to W_E.</summary>
    public Parameter? W_U { get; }
    public Parameter b_U { get; }

    internal UnembedWeights(TransformerConfig c, Device d, ScalarType t) : base("unembed")
    {
        if (!c.TiedEmbeddings)
        {
            W_U = Weights.New(d, t, c.DModel, c.OutputVocab);
            register_parameter("W_U", W_U);
        }
        b_U = Weights.New(d, t, c.OutputVocab);
        register_parameter("b_U", b_U);
    }
}
