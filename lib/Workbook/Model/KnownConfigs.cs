namespace Workbook.Model;

/// <summary>
/// The one table of model configurations the workbook knows without reading a checkpoint: the paper's models (spec
/// section E) and the compiled Tracr models, so that graphs and official circuits can be built and counted without
/// downloading any weights, and benchmarks can build random models of the same shapes.
/// </summary>
public static class KnownConfigs
{
    /// <summary>GPT-2 small (IOI): 12 layers, 12 heads of 64, MLP 3072, tied unembedding.</summary>
    public static TransformerConfig Gpt2Small { get; } = new()
    {
        Name = "gpt2", Architecture = Architecture.Gpt2, NLayers = 12, DModel = 768, NHeads = 12, DHead = 64, DMlp = 3072,
        DVocab = 50257, NCtx = 1024, TiedEmbeddings = true, BosTokenId = 50256,
    };

    /// <summary>attn-only-4l (Docstring): 4 attention-only layers of 8 heads, learned positions.</summary>
    public static TransformerConfig AttnOnly4L { get; } = new()
    {
        Name = "attn-only-4l", Architecture = Architecture.AttentionOnly, NLayers = 4, DModel = 512, NHeads = 8, DHead = 64,
        DVocab = 48262, NCtx = 1024, AttentionOnly = true,
    };

    /// <summary>Pythia-2.8B-deduped (Sports Players): 32 parallel blocks of 32 heads of 80, rotary on 20 dims.</summary>
    public static TransformerConfig Pythia28B { get; } = new()
    {
        Name = "pythia-2.8b-deduped", Architecture = Architecture.GptNeoX, NLayers = 32, DModel = 2560, NHeads = 32, DHead = 80,
        DMlp = 10240, DVocab = 50304, NCtx = 2048, Activation = ActivationFunction.Gelu, Positional = PositionalEmbedding.Rotary,
        RotaryDim = 20, ParallelAttnMlp = true, BosTokenId = 0,
    };

    /// <summary>The compiled Tracr X-Proportion model: 2 layers, 1 head, d_model 14, one numerical output (defined with its weights).</summary>
    public static TransformerConfig TracrXProportion => Embedded.TracrXProportion.Config;

    /// <summary>The compiled Tracr Reverse model: 4 layers, 1 head, d_model 41, three categorical outputs (defined with its weights).</summary>
    public static TransformerConfig TracrReverse => Embedded.TracrReverse.Config;

    /// <summary>GPT-2 small's shape under another name, for random-weight workloads (benchmarks, self-checks).</summary>
    public static TransformerConfig Gpt2SmallShape { get; } = Gpt2Small with { Name = "gpt2-small-shape", BosTokenId = null };

    /// <summary>Every known config by name.</summary>
    public static IReadOnlyDictionary<string, TransformerConfig> ByName { get; } = new Dictionary<string, TransformerConfig>(StringComparer.OrdinalIgnoreCase)
    {
        [Gpt2Small.Name] = Gpt2Small,
        [AttnOnly4L.Name] = AttnOnly4L,
        [Pythia28B.Name] = Pythia28B,
        [TracrXProportion.Name] = TracrXProportion,
        [TracrReverse.Name] = TracrReverse,
    };
}
