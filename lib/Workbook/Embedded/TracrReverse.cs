using Workbook.Model;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>
/// The Tracr-compiled RASP program that reverses its input over the vocabulary {1, 2, 3}:
/// <code>
/// length   = SelectorWidth(Select(tokens, tokens, TRUE))        // Attn 0.0 + MLP 0
/// opp_idx  = (length - indices) - 1                              // MLP 1 (SequenceMap), MLP 2 (Map)
/// reverse  = Aggregate(Select(indices, opp_idx, EQ), tokens)     // Attn 3.0
/// </code>
/// Four layers, one head each, no LayerNorm, ReLU MLPs, bidirectional attention; Attn 1, Attn 2 and MLP 3 are empty.
/// The three outputs are the residual directions aggregate:1..3 (one-hot of the reversed token).
/// Weights follow the compiled model (paper reference, section E.4 and Appendix B.2), written by rule.
/// </summary>
public static class TracrReverse
{
    public const string Alias = "tracr-reverse";

    /// <summary>Input symbols in token-id order: "1" = 0, "2" = 1, "3" = 2, BOS = 3, compiler_pad = 4 (never used).</summary>
    public static readonly IReadOnlyList<string> Vocabulary = new[] { "1", "2", "3", "BOS", "compiler_pad" };

    /// <summary>The symbols a program input is made of.</summary>
    public static readonly IReadOnlyList<string> InputSymbols = new[] { "1", "2", "3" };

    /// <summary>Output ids 0, 1, 2 stand for the symbols "1", "2", "3".</summary>
    public static readonly IReadOnlyList<string> OutputSymbols = InputSymbols;

    public const int BosToken = 3;
    public const int MaxInputLength = 5;

    static readonly int[] Lengths = Enumerable.Range(0, MaxInputLength + 1).ToArray();          // selector width 0..5
    static readonly int[] Indices = Enumerable.Range(0, MaxInputLength).ToArray();              // 0..4
    static readonly int[] LengthMinusIndex = Enumerable.Range(-4, 10).ToArray();                // -4..5
    static readonly int[] OppositeIndex = LengthMinusIndex.Select(v => v - 1).ToArray();        // -5..4

    /// <summary>Residual directions in Tracr's sorted order (41).</summary>
    public static readonly ResidualSpace Residual = new(
        ResidualSpace.Category("aggregate", InputSymbols)
            .Concat(ResidualSpace.Category("indices", Indices))
            .Concat(ResidualSpace.Category("map", OppositeIndex))
            .Append("one")
            .Concat(ResidualSpace.Category("selector_width", Lengths))
            .Append("selector_width_attn_output")
            .Concat(ResidualSpace.Category("sequence_map", LengthMinusIndex))
            .Concat(ResidualSpace.Category("tokens", Vocabulary)));

    public static readonly TransformerConfig Config = new TransformerConfig
    {
        Name = Alias,
        Architecture = Architecture.Tracr,
        NLayers = 4,
        DModel = 41,
        NHeads = 1,
        DHead = 12,
        DMlp = 30,
        DVocab = Vocabulary.Count,
        DVocabOut = OutputSymbols.Count,
        NCtx = MaxInputLength + 1,
        Activation = ActivationFunction.Relu,
        UseLayerNorm = false,
        Causal = false,
        TiedEmbeddings = false,
        BosTokenId = BosToken,
    }.Validate();

    /// <summary>Input symbols separated by spaces, e.g. "BOS 1 3 2". Never adds the BOS by itself.</summary>
    public static ITokenizer Tokenizer { get; } = new SymbolTokenizer(Alias, Vocabulary, "BOS");

    const double Coldness = 100;     // attention logit of a selected key
    const double LargeNumber = 100;  // slope of the selector-width discretising MLP

    public static HookedTransformer Build(Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var w = new CompiledWeights(Config, Residual);
        for (int t = 0; t < Vocabulary.Count; t++)
        {
            w.Embedding(t, "one");
            w.Embedding(t, $"tokens:{Vocabulary[t]}");
        }
        for (int p = 1; p <= MaxInputLength; p++) w.Position(p, $"indices:{p - 1}");

        SelectorWidthAttention(w);
        SelectorWidthMlp(w);
        LengthMinusIndexMlp(w);
        MinusOneMlp(w);
        ReverseAggregate(w);
        return w.Build(device, dtype);
    }

    /// <summary>
    /// Attn 0.0: every query selects every key (predicate TRUE) and BOS with the same logit, so attention is
    /// uniform over BOS and the n input tokens; the value reads "tokens:BOS", which writes 1/(n+1) into
    /// selector_width_attn_output.
    /// </summary>
    static void SelectorWidthAttention(CompiledWeights w)
    {
        const int bosDim = 3;
        for (int k = 0; k < InputSymbols.Count; k++)
        {
            w.AttentionRead(0, 'K', $"tokens:{InputSymbols[k]}", k, 1.0);
            foreach (var q in InputSymbols) w.AttentionRead(0, 'Q', $"tokens:{q}", k, Coldness);
        }
        w.AttentionRead(0, 'K', "tokens:BOS", bosDim, 1.0);
        w.AttentionRead(0, 'Q', "one", bosDim, Coldness);
        w.AttentionRead(0, 'V', "tokens:BOS", 0, 1.0);
        w.AttentionWrite(0, 0, "selector_width_attn_output", 1.0);
    }

    /// <summary>
    /// MLP 0: turns a = 1/(n+1) into the one-hot selector_width:n. Unit 11 (always on) writes
    /// selector_width:5. For each n = 5..1 a pair of units makes a ramp from 0 to 1 at the threshold t
    /// halfway between 1/(n+1) and 1/n: relu(L(a − t) + 1) − relu(L(a − t)); above t it moves the one-hot from n
    /// to n − 1, so the moves telescope to the right n. Unit 0 fires only at BOS and removes what the
    /// attention and the MLP wrote there.
    /// </summary>
    static void SelectorWidthMlp(CompiledWeights w)
    {
        w.MlpRead(0, "tokens:BOS", 0, 1.0);
        w.MlpWrite(0, 0, "selector_width:0", -1.0);
        w.MlpWrite(0, 0, "selector_width_attn_output", -1.0);

        int unit = 1;
        for (int n = MaxInputLength; n >= 1; n--, unit += 2)
        {
            double threshold = (1.0 / (n + 1) + 1.0 / n) / 2;
            w.MlpRead(0, "selector_width_attn_output", unit, LargeNumber);
            w.MlpRead(0, "one", unit, -LargeNumber * threshold + 1);
            w.MlpRead(0, "selector_width_attn_output", unit + 1, LargeNumber);
            w.MlpRead(0, "one", unit + 1, -LargeNumber * threshold);
            w.MlpWrite(0, unit, $"selector_width:{n - 1}", 1.0);
            w.MlpWrite(0, unit, $"selector_width:{n}", -1.0);
            w.MlpWrite(0, unit + 1, $"selector_width:{n - 1}", -1.0);
            w.MlpWrite(0, unit + 1, $"selector_width:{n}", 1.0);
        }
        w.MlpRead(0, "one", unit, 1.0);
        w.MlpWrite(0, unit, $"selector_width:{MaxInputLength}", 1.0);
    }

    /// <summary>
    /// MLP 1 — SequenceMap(length − index): one unit per (length n, index i) pair, n-major, that fires only when
    /// both one-hots are set (relu(sw:n + indices:i − 1)) and writes sequence_map:(n − i).
    /// </summary>
    static void LengthMinusIndexMlp(CompiledWeights w)
    {
        foreach (int n in Lengths)
            foreach (int i in Indices)
            {
                int unit = n * Indices.Length + i;
                w.MlpRead(1, $"selector_width:{n}", unit, 1.0);
                w.MlpRead(1, $"indices:{i}", unit, 1.0);
                w.MlpRead(1, "one", unit, -1.0);
                w.MlpWrite(1, unit, $"sequence_map:{n - i}", 1.0);
            }
    }

    /// <summary>MLP 2 — Map(x − 1): one unit per value of sequence_map, writing map:(x − 1).</summary>
    static void MinusOneMlp(CompiledWeights w)
    {
        for (int unit = 0; unit < LengthMinusIndex.Length; unit++)
        {
            int x = LengthMinusIndex[unit];
            w.MlpRead(2, $"sequence_map:{x}", unit, 1.0);
            w.MlpWrite(2, unit, $"map:{x - 1}", 1.0);
        }
    }

    /// <summary>
    /// Attn 3.0 — Aggregate(Select(indices, opp_idx, EQ), tokens): the query at opposite index k selects the key
    /// at index k; BOS gets half the logit (the default when nothing matches). The value copies the token
    /// one-hot into aggregate:1..3.
    /// </summary>
    static void ReverseAggregate(CompiledWeights w)
    {
        const int bosDim = MaxInputLength;
        foreach (int k in Indices)
        {
            w.AttentionRead(3, 'Q', $"map:{k}", k, Coldness);
            w.AttentionRead(3, 'K', $"indices:{k}", k, 1.0);
        }
        w.AttentionRead(3, 'Q', "one", bosDim, Coldness / 2);
        w.AttentionRead(3, 'K', "tokens:BOS", bosDim, 1.0);
        for (int v = 0; v < InputSymbols.Count; v++)
        {
            w.AttentionRead(3, 'V', $"tokens:{InputSymbols[v]}", v, 1.0);
            w.AttentionWrite(3, v, $"aggregate:{InputSymbols[v]}", 1.0);
        }
    }

    /// <summary>What the RASP program computes for one input (symbols without BOS): the input reversed.</summary>
    public static string[] ProgramOutput(IReadOnlyList<string> input)
    {
        foreach (var s in input)
            if (!InputSymbols.Contains(s)) throw new ArgumentException($"'{s}' is not an input symbol of {Alias} ({string.Join(", ", InputSymbols)}).");
        return input.Reverse().ToArray();
    }
}
