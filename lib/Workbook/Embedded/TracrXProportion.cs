using Workbook.Model;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>
/// The Tracr-compiled RASP program <c>frac_prevs(tokens == "x")</c> over the vocabulary {w, x, y, z}: at each
/// position i (1..5, after BOS) the output is the fraction of x among positions 1..i. Two layers, one head each,
/// no LayerNorm, ReLU MLPs, bidirectional attention; only MLP 0 and Attn 1.0 are used.
/// Weights follow the compiled model (paper reference, section E.4 and Appendix B.1) and are written here by
/// the residual directions they read and write.
/// </summary>
public static class TracrXProportion
{
    public const string Alias = "tracr-xproportion";

    /// <summary>Input symbols in token-id order: BOS = 0, compiler_pad = 1 (never used), w = 2, x = 3, y = 4, z = 5.</summary>
    public static readonly IReadOnlyList<string> Vocabulary = new[] { "BOS", "compiler_pad", "w", "x", "y", "z" };

    /// <summary>The symbols a program input is made of (everything except BOS and padding).</summary>
    public static readonly IReadOnlyList<string> InputSymbols = new[] { "w", "x", "y", "z" };

    public const int BosToken = 0;
    /// <summary>Longest input after BOS.</summary>
    public const int MaxInputLength = 5;

    /// <summary>
    /// Residual directions, sorted like Tracr's basis: the output, the position one-hot, the "is x" bit,
    /// the constant, and the token one-hot.
    /// </summary>
    public static readonly ResidualSpace Residual = new(
        new[] { "frac_prevs" }
            .Concat(ResidualSpace.Category("indices", Enumerable.Range(0, MaxInputLength)))
            .Concat(new[] { "map", "one" })
            .Concat(ResidualSpace.Category("tokens", Vocabulary)));

    public static readonly TransformerConfig Config = new TransformerConfig
    {
        Name = Alias,
        Architecture = Architecture.Tracr,
        NLayers = 2,
        DModel = 14,
        NHeads = 1,
        DHead = 7,
        DMlp = 1,
        DVocab = Vocabulary.Count,
        DVocabOut = 1,
        NCtx = MaxInputLength + 1,
        Activation = ActivationFunction.Relu,
        UseLayerNorm = false,
        Causal = false,
        TiedEmbeddings = false,
        BosTokenId = BosToken,
    }.Validate();

    /// <summary>Input symbols separated by spaces, e.g. "BOS x w y". Never adds the BOS by itself.</summary>
    public static ITokenizer Tokenizer { get; } = new SymbolTokenizer(Alias, Vocabulary, "BOS");

    /// <summary>Attention logit scale Tracr uses for a Select ("softmax coldness").</summary>
    const double Coldness = 100;

    public static HookedTransformer Build(Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var w = new CompiledWeights(Config, Residual);

        // Embeddings: every token writes the constant "one" and its own one-hot; position p >= 1 writes
        // indices:(p-1); the BOS position has no index.
        for (int t = 0; t < Vocabulary.Count; t++)
        {
            w.Embedding(t, "one");
            w.Embedding(t, $"tokens:{Vocabulary[t]}");
        }
        for (int p = 1; p <= MaxInputLength; p++) w.Position(p, $"indices:{p - 1}");

        // MLP 0 — numerical Map(tokens == "x"): one hidden unit that fires for x and writes 1 into "map".
        w.MlpRead(0, "tokens:x", 0, 1.0);
        w.MlpWrite(0, 0, "map", 1.0);

        // Attn 1.0 — numerical Aggregate(Select(indices, indices, LEQ), map). Head dim j < 5 pairs a key at
        // index j with every query at index i >= j; head dim 5 lets BOS win only when nothing else is selected
        // (half the logit), which makes the default 0. The value copies "map", the output is "frac_prevs".
        const int bosDim = MaxInputLength;
        for (int i = 0; i < MaxInputLength; i++)
            for (int j = 0; j <= i; j++)
                w.AttentionRead(1, 'Q', $"indices:{i}", j, Coldness);
        for (int j = 0; j < MaxInputLength; j++) w.AttentionRead(1, 'K', $"indices:{j}", j, 1.0);
        w.AttentionRead(1, 'Q', "one", bosDim, Coldness / 2);
        w.AttentionRead(1, 'K', "tokens:BOS", bosDim, 1.0);
        w.AttentionRead(1, 'V', "map", 0, 1.0);
        w.AttentionWrite(1, 0, "frac_prevs", 1.0);

        return w.Build(device, dtype);
    }

    /// <summary>What the RASP program computes for one input (symbols without BOS): the running fraction of x.</summary>
    public static double[] ProgramOutput(IReadOnlyList<string> input)
    {
        var result = new double[input.Count];
        int xs = 0;
        for (int i = 0; i < input.Count; i++)
        {
            if (!InputSymbols.Contains(input[i])) throw new ArgumentException($"'{input[i]}' is not an input symbol of {Alias} ({string.Join(", ", InputSymbols)}).");
            if (input[i] == "x") xs++;
            result[i] = (double)xs / (i + 1);
        }
        return result;
    }
}
