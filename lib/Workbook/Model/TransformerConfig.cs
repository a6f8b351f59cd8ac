namespace Workbook.Model;

/// <summary>The family a model belongs to; behaviour is driven by the explicit fields of <see cref="TransformerConfig"/>.</summary>
public enum Architecture
{
    /// <summary>GPT-2: learned positions, pre-LayerNorm, gelu_new, tied unembedding.</summary>
    Gpt2,
    /// <summary>GPT-NeoX / Pythia: partial rotary embeddings, parallel attention and MLP, exact gelu, untied unembedding.</summary>
    GptNeoX,
    /// <summary>TransformerLens attention-only models (for example attn-only-4l).</summary>
    AttentionOnly,
    /// <summary>Models compiled by Tracr: bidirectional attention, no LayerNorm, ReLU MLPs.</summary>
    Tracr,
}

public enum ActivationFunction
{
    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), GPT-2's "gelu_new".</summary>
    GeluNew,
    /// <summary>The exact erf-based GELU (GPT-NeoX's "gelu").</summary>
    Gelu,
    Relu,
}

public enum PositionalEmbedding
{
    /// <summary>A learned table added to the residual stream (GPT-2, attn-only-4l, Tracr).</summary>
    Learned,
    /// <summary>Rotary embedding applied to queries and keys; nothing is added to the residual stream.</summary>
    Rotary,
}

/// <summary>
/// Everything needed to build a transformer and its graph, independent of any weights.
/// Shapes follow TransformerLens: W_Q is [n_heads, d_model, d_head], W_O is [n_heads, d_head, d_model].
/// </summary>
public sealed record TransformerConfig
{
    public required string Name { get; init; }
    public required Architecture Architecture { get; init; }
    public required int NLayers { get; init; }
    public required int DModel { get; init; }
    public required int NHeads { get; init; }
    public required int DHead { get; init; }
    /// <summary>Hidden size of each MLP; 0 for attention-only models.</summary>
    public int DMlp { get; init; }
    /// <summary>Size of the input vocabulary (rows of W_E).</summary>
    public required int DVocab { get; init; }
    /// <summary>Size of the output vocabulary (columns of W_U); equals <see cref="DVocab"/> except for Tracr models.</summary>
    public int DVocabOut { get; init; }
    /// <summary>Maximum sequence length (rows of W_pos for learned positions).</summary>
    public required int NCtx { get; init; }
    public ActivationFunction Activation { get; init; } = ActivationFunction.GeluNew;
    /// <summary>False for Tracr models, which have no LayerNorm anywhere.</summary>
    public bool UseLayerNorm { get; init; } = true;
    public double LayerNormEps { get; init; } = 1e-5;
    public PositionalEmbedding Positional { get; init; } = PositionalEmbedding.Learned;
    /// <summary>Number of leading dimensions of each head that rotary embedding rotates (even).</summary>
    public int RotaryDim { get; init; }
    public double RotaryBase { get; init; } = 10000.0;
    /// <summary>Attention and MLP both read the block's input (GPT-NeoX), instead of the MLP reading resid_mid.</summary>
    public bool ParallelAttnMlp { get; init; }
    public bool AttentionOnly { get; init; }
    /// <summary>False for Tracr's bidirectional attention.</summary>
    public bool Causal { get; init; } = true;
    /// <summary>W_U is W_E transposed (GPT-2).</summary>
    public bool TiedEmbeddings { get; init; }
    /// <summary>The BOS token id of the model's tokenizer, if it has one. The model never prepends it by itself.</summary>
    public int? BosTokenId { get; init; }

    public bool HasMlp => !AttentionOnly && DMlp > 0;
    public int OutputVocab => DVocabOut > 0 ? DVocabOut : DVocab;

    /// <summary>Checks internal consistency; throws <see cref="ArgumentException"/> naming the offending field.</summary>
    public TransformerConfig Validate()
    {
        void Positive(int value, string name)
        {
            if (value <= 0) throw new ArgumentException($"Model config '{Name}': {name} must be positive, got {value}.");
        }
        Positive(NLayers, nameof(NLayers));
        Positive(DModel, nameof(DModel));
        Positive(NHeads, nameof(NHeads));
        Positive(DHead, nameof(DHead));
        Positive(DVocab, nameof(DVocab));
        Positive(NCtx, nameof(NCtx));
        if (!AttentionOnly) Positive(DMlp, nameof(DMlp));
        if (DVocabOut < 0) throw new ArgumentException($"Model config '{Name}': DVocabOut must not be negative.");
        if (Positional == PositionalEmbedding.Rotary && (RotaryDim <= 0 || RotaryDim % 2 != 0 || RotaryDim > DHead))
            throw new ArgumentException($"Model config '{Name}': rotary dimension {RotaryDim} must be even and within 1..{DHead}.");
        if (TiedEmbeddings && DVocabOut > 0 && DVocabOut != DVocab)
            throw new ArgumentException($"Model config '{Name}': tied embeddings need equal input and output vocabularies.");
        if (LayerNormEps <= 0 && UseLayerNorm)
            throw new ArgumentException($"Model config '{Name}': LayerNorm epsilon must be positive.");
        return this;
    }
}
