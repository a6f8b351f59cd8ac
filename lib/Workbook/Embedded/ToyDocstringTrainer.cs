using Workbook.Model;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tokenization;
using Workbook.Util;

namespace Workbook.Embedded;

/// <summary>Hyper-parameters of the toy Docstring model and its training run. The defaults produce the committed checkpoint.</summary>
public sealed record ToyDocstringTrainingOptions
{
    /// <summary>Seeds the weight initialisation and the stream of training prompts.</summary>
    public ulong Seed { get; init; } = 20240402;
    public int Steps { get; init; } = 4000;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Loss weight of the argument names the docstring rule determines (after every <c>:param</c> but the first) relative to every other token.</summary>
    public double AnswerWeight { get; init; } = 4.0;
    public int Layers { get; init; } = 3;
    public int DModel { get; init; } = 64;
    public int Heads { get; init; } = 4;
    /// <summary>Rows of the position table: the longest training prompt with BOS and answer has <see cref="ToyDocstringTrainer.LongestTrainingSequence"/> tokens.</summary>
    public int Context { get; init; } = 56;
    /// <summary>CPU threads for training. One thread makes float reductions, and therefore the weights, reproducible.</summary>
    public int Threads { get; init; } = 1;

    public ToyDocstringTrainingOptions Validate()
    {
        ToyTraining.ValidateRecipe(Steps, BatchSize, LearningRate, WarmupSteps, WeightDecay, Threads);
        ToyTraining.ValidateShape(Layers, DModel, Heads);
        if (Context < ToyDocstringTrainer.LongestTrainingSequence)
            throw new ArgumentException($"The context must hold the longest training prompt with BOS and answer ({ToyDocstringTrainer.LongestTrainingSequence} tokens), got {Context}.");
        return this;
    }
}

/// <summary>
/// Trains the toy Docstring model: a small attention-only transformer (like attn-only-4l, much smaller) that learns
/// next-token prediction on Docstring prompts in the task's layout (<see cref="TrainingPrompt"/>), with extra weight on the
/// argument names the docstring rule determines. Deterministic for a given seed and thread count.
/// </summary>
public static class ToyDocstringTrainer
{
    public const string EndOfText = "<|endoftext|>";
    public const string Unknown = "[UNK]";

    /// <summary>The pieces of the method and docstring around the names, as GPT-2's pattern cuts them.</summary>
    static readonly string[] Layout = { "\n", "def", "(", "self", ",", "):", "\n   ", " \"\"\"", "\n\n   ", " :", "param", ":" };

    /// <summary>
    /// The vocabulary: &lt;|endoftext|&gt; (BOS and padding, id 0), [UNK], the layout pieces, every variable name with its
    /// leading space, then every description noun without and with a leading space (the first follows <c>"""</c>
    /// directly), duplicates dropped. Byte-level pre-tokenization keeps attn-only-4l's layout: 40 tokens, the
    /// arguments at the task's labelled positions.
    /// </summary>
    public static WordLevelTokenizer BuildTokenizer()
    {
        var pieces = Layout
            .Concat(DocstringGenerator.VariableNames.Select(n => " " + n))
            .Concat(DocstringGenerator.Nouns)
            .Concat(DocstringGenerator.Nouns.Select(n => " " + n))
            .Select(ByteLevel.Encode);
        var vocabulary = new[] { EndOfText, Unknown }.Concat(pieces).Distinct(StringComparer.Ordinal).ToList();
        return new WordLevelTokenizer(ToyDocstring.Alias, vocabulary, Unknown, new[] { EndOfText, Unknown }, EndOfText, WordLevelPreTokenizer.ByteLevel);
    }

    public static TransformerConfig ModelConfig(ToyDocstringTrainingOptions o, int vocabSize) => new TransformerConfig
    {
        Name = ToyDocstring.Alias,
        Architecture = Architecture.AttentionOnly,
        AttentionOnly = true,
        NLayers = o.Layers,
        DModel = o.DModel,
        NHeads = o.Heads,
        DHead = o.DModel / o.Heads,
        DVocab = vocabSize,
        NCtx = o.Context,
        TiedEmbeddings = false,
        BosTokenId = 0,
    }.Validate();

    public static ToyOptimiser Optimiser(ToyDocstringTrainingOptions o) => new(o.Seed, o.Steps, o.LearningRate, o.WarmupSteps, o.WeightDecay, o.Threads);

    /// <summary>
    /// One training prompt in the task's layout (<see cref="DocstringGenerator"/>: a method's definition, a description,
    /// then <c>:param</c> lines for the definition's arguments in order, the last of which is the answer) with its shape
    /// drawn afresh: 0 to <see cref="MaxBefore"/> definition arguments before the documented ones, 3 matching ones (2
    /// documented, the answer), 0 to <see cref="MaxAfter"/> after; 1 to 4 words of method description and 1 to 3 per
    /// argument. The evaluation prompts (2 before, 1 after, 3 and 2 words) are one of these shapes. Because the answer's
    /// place moves, the model cannot read it off a fixed position: it has to find the documented argument's name in the
    /// definition and take the one after it, routing information through the earlier positions (as attn-only-4l does)
    /// instead of copying position 14. Names and nouns are drawn without replacement by a seeded generator of its own,
    /// so training prompts are not the evaluation prompts.
    /// </summary>
    public static (string Text, string Answer) TrainingPrompt(SeededRandom rng)
    {
        const int matching = 3;
        int before = rng.Next(MaxBefore + 1), after = rng.Next(MaxAfter + 1), describe = 1 + rng.Next(4);
        var names = Sample(rng, DocstringGenerator.VariableNames, 1 + before + matching + after);
        var definition = names.Skip(1).ToList();
        var documented = definition.Skip(before).Take(matching - 1).ToList();
        string answer = definition[before + matching - 1];
        var description = Sample(rng, DocstringGenerator.Nouns, describe);
        var argDescriptions = documented.Select(_ => Sample(rng, DocstringGenerator.Nouns, 1 + rng.Next(3))).ToList();
        return (DocstringGenerator.Text(names[0], description, definition, documented, argDescriptions), " " + answer);
    }

    /// <summary>Most definition arguments before the documented ones, and after the answer, in a training prompt.</summary>
    public const int MaxBefore = 3, MaxAfter = 2;

    /// <summary>Tokens of the longest training prompt with BOS and answer: the evaluation shape's 42, plus 2 per extra argument, 1 per extra description word.</summary>
    public const int LongestTrainingSequence = 42 + 2 * (MaxBefore - 2) + 2 * (MaxAfter - 1) + (4 - 3) + 2 * (3 - 2);

    /// <summary><paramref name="count"/> distinct items in random order (a partial Fisher–Yates shuffle).</summary>
    static List<string> Sample(SeededRandom rng, IReadOnlyList<string> items, int count)
    {
        var pool = items.ToArray();
        for (int i = 0; i < count; i++)
        {
            int j = i + rng.Next(pool.Length - i);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        return pool.Take(count).ToList();
    }

    /// <summary>Token sequences (BOS, prompt, answer) of one training batch.</summary>
    public static IReadOnlyList<int[]> TrainingSequences(WordLevelTokenizer tokenizer, int count, ulong seed)
    {
        var rng = new SeededRandom(seed);
        int bos = tokenizer.Bos!.Value.Id;
        return Enumerable.Range(0, count).Select(_ =>
        {
            var (text, answer) = TrainingPrompt(rng);
            return tokenizer.Encode(text).Prepend(bos).Append(tokenizer.SingleToken(answer)).ToArray();
        }).ToList();
    }

    /// <summary>
    /// Trains a new model (only the first <paramref name="stopAfter"/> steps of the schedule when given). The model is frozen
    /// (no gradients) when returned.
    /// </summary>
    public static HookedTransformer Train(ToyDocstringTrainingOptions options, WordLevelTokenizer tokenizer, IProgress<ToyTrainingProgress>? progress = null, CancellationToken cancel = default,
        int? stopAfter = null)
    {
        options.Validate();
        var model = new HookedTransformer(ModelConfig(options, tokenizer.VocabSize));
        try
        {
            int pad = tokenizer.Id(EndOfText), param = tokenizer.Id("param");
            ToyTraining.Run(model, Optimiser(options) with { StopAfter = stopAfter }, seed =>
            {
                var sequences = TrainingSequences(tokenizer, options.BatchSize, seed);
                // The argument after every ":param" but the first follows the rule (the definition argument after the previous one).
                var ruled = sequences.Select(s => Enumerable.Range(0, s.Length).Where(t => s[t] == param).Skip(1).ToHashSet()).ToList();
                return ToyTraining.Batch(sequences, pad, options.AnswerWeight, (b, t) => ruled[b].Contains(t) ? (float)options.AnswerWeight : null);
            }, progress, cancel);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
