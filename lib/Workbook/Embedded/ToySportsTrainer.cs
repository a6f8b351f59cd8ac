using Workbook.Model;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tokenization;
using Workbook.Util;

namespace Workbook.Embedded;

/// <summary>Hyper-parameters of the toy Sports model and its training run. The defaults produce the committed checkpoint.</summary>
public sealed record ToySportsTrainingOptions
{
    /// <summary>Seeds the weight initialisation and the order of training prompts.</summary>
    public ulong Seed { get; init; } = 20240403;
    public int Steps { get; init; } = 1500;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Loss weight of the sport at the end relative to every other next-token prediction.</summary>
    public double AnswerWeight { get; init; } = 4.0;
    public int Layers { get; init; } = 2;
    public int DModel { get; init; } = 64;
    public int Heads { get; init; } = 4;
    public int DMlp { get; init; } = 256;
    /// <summary>Rows of the position table; a prompt with BOS and answer has 21 tokens.</summary>
    public int Context { get; init; } = 24;
    public int Threads { get; init; } = 1;

    public ToySportsTrainingOptions Validate()
    {
        ToyTraining.ValidateRecipe(Steps, BatchSize, LearningRate, WarmupSteps, WeightDecay, Threads);
        ToyTraining.ValidateShape(Layers, DModel, Heads, DMlp);
        if (Context < 21) throw new ArgumentException($"The context must hold a prompt with BOS and answer (21 tokens), got {Context}.");
        return this;
    }
}

/// <summary>
/// Trains the toy Sports model: a small GPT-2-style transformer that memorises which of three sports each of the made-up
/// players of <see cref="ToySports.Players"/> plays, from the Sports Players prompt ("Fact: Tiger Woods plays the sport of
/// golf\nFact: {player} plays the sport of" → sport). Deterministic for a given seed and thread count.
/// </summary>
public static class ToySportsTrainer
{
    public const string EndOfText = "<|endoftext|>";
    public const string Unknown = "[UNK]";

    /// <summary>
    /// The vocabulary: &lt;|endoftext|&gt; (BOS and padding, id 0), [UNK], the template's pieces as GPT-2's pattern cuts them,
    /// the three sports and golf, then every name part of <see cref="ToySports.NameParts"/> with its leading space.
    /// </summary>
    public static WordLevelTokenizer BuildTokenizer()
    {
        var template = SportsPlayersGenerator.Template.Split("{0}").SelectMany(t => ByteLevel.Gpt2Pattern().Matches(t).Select(m => m.Value));
        var sports = Enum.GetValues<Sport>().Select(SportsPlayersGenerator.AnswerText);
        var pieces = template.Concat(sports).Concat(ToySports.NameParts.Select(p => " " + p)).Select(ByteLevel.Encode);
        var vocabulary = new[] { EndOfText, Unknown }.Concat(pieces).Distinct(StringComparer.Ordinal).ToList();
        return new WordLevelTokenizer(ToySports.Alias, vocabulary, Unknown, new[] { EndOfText, Unknown }, EndOfText, WordLevelPreTokenizer.ByteLevel);
    }

    public static TransformerConfig ModelConfig(ToySportsTrainingOptions o, int vocabSize) => new TransformerConfig
    {
        Name = ToySports.Alias,
        Architecture = Architecture.Gpt2,
        NLayers = o.Layers,
        DModel = o.DModel,
        NHeads = o.Heads,
        DHead = o.DModel / o.Heads,
        DMlp = o.DMlp,
        DVocab = vocabSize,
        NCtx = o.Context,
        Activation = ActivationFunction.GeluNew,
        TiedEmbeddings = true,
        BosTokenId = 0,
    }.Validate();

    public static ToyOptimiser Optimiser(ToySportsTrainingOptions o) => new(o.Seed, o.Steps, o.LearningRate, o.WarmupSteps, o.WeightDecay, o.Threads);

    /// <summary>Token sequences (BOS, prompt, sport) of players drawn uniformly from the table.</summary>
    public static IReadOnlyList<int[]> TrainingSequences(WordLevelTokenizer tokenizer, int count, ulong seed)
    {
        var rng = new SeededRandom(seed);
        var players = ToySports.Players;
        int bos = tokenizer.Bos!.Value.Id;
        return Enumerable.Range(0, count).Select(_ =>
        {
            var p = players[rng.Next(players.Count)];
            return tokenizer.Encode(string.Format(SportsPlayersGenerator.Template, p.Name) + SportsPlayersGenerator.AnswerText(p.Sport)).Prepend(bos).ToArray();
        }).ToList();
    }

    /// <summary>
    /// Trains a new model (only the first <paramref name="stopAfter"/> steps of the schedule when given). The model is frozen
    /// (no gradients) when returned.
    /// </summary>
    public static HookedTransformer Train(ToySportsTrainingOptions options, WordLevelTokenizer tokenizer, IProgress<ToyTrainingProgress>? progress = null, CancellationToken cancel = default,
        int? stopAfter = null)
    {
        options.Validate();
        var model = new HookedTransformer(ModelConfig(options, tokenizer.VocabSize));
        try
        {
            int pad = tokenizer.Id(EndOfText);
            ToyTraining.Run(model, Optimiser(options) with { StopAfter = stopAfter }, seed => ToyTraining.Batch(TrainingSequences(tokenizer, options.BatchSize, seed), pad, options.AnswerWeight), progress, cancel);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
