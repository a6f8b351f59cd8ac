using Workbook.Model;
using Workbook.Tokenization;

namespace Workbook.Embedded;

/// <summary>Hyper-parameters of the toy IOI model and its training run. The defaults produce the committed checkpoint.</summary>
public sealed record ToyIoiTrainingOptions
{
    /// <summary>Seeds the weight initialisation and the order of training sentences.</summary>
    public ulong Seed { get; init; } = 20240401;
    public int Steps { get; init; } = 3000;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Loss weight of the final prediction (the indirect object) relative to every other next-token prediction.</summary>
    public double AnswerWeight { get; init; } = 4.0;
    public int Layers { get; init; } = 3;
    public int DModel { get; init; } = 64;
    public int Heads { get; init; } = 4;
    public int DMlp { get; init; } = 256;
    /// <summary>Rows of the position table; the longest training sentence has 21 tokens.</summary>
    public int Context { get; init; } = 32;
    /// <summary>CPU threads for training. One thread makes float reductions, and therefore the weights, reproducible.</summary>
    public int Threads { get; init; } = 1;

    public ToyIoiTrainingOptions Validate()
    {
        ToyTraining.ValidateRecipe(Steps, BatchSize, LearningRate, WarmupSteps, WeightDecay, Threads);
        ToyTraining.ValidateShape(Layers, DModel, Heads, DMlp);
        return this;
    }
}

/// <summary>
/// Trains the toy IOI model: a small GPT-2-style transformer that learns next-token prediction on sentences from the
/// IOI templates (<see cref="IoiSentences"/>), with extra weight on the final word, the indirect object. The answer
/// is the name that appears once among the names before the end, so the task is learnable and does not depend on
/// the corruption used later. Deterministic for a given seed and thread count.
/// </summary>
public static class ToyIoiTrainer
{
    public const string EndOfText = "<|endoftext|>";
    public const string Unknown = "[UNK]";

    /// <summary>The word-level vocabulary: &lt;|endoftext|&gt; (BOS and padding, id 0), [UNK], then every IOI word in first-use order.</summary>
    public static WordLevelTokenizer BuildTokenizer() =>
        new(ToyIoi.Alias, new[] { EndOfText, Unknown }.Concat(IoiSentences.Words()).ToList(), Unknown, new[] { EndOfText, Unknown }, EndOfText);

    public static TransformerConfig ModelConfig(ToyIoiTrainingOptions o, int vocabSize) => new TransformerConfig
    {
        Name = ToyIoi.Alias,
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

    /// <summary>The optimiser schedule of <paramref name="o"/>.</summary>
    public static ToyOptimiser Optimiser(ToyIoiTrainingOptions o) => new(o.Seed, o.Steps, o.LearningRate, o.WarmupSteps, o.WeightDecay, o.Threads);

    /// <summary>
    /// Trains a new model (only the first <paramref name="stopAfter"/> steps of the schedule when given). The model is frozen
    /// (no gradients) when returned.
    /// </summary>
    public static HookedTransformer Train(ToyIoiTrainingOptions options, WordLevelTokenizer tokenizer, IProgress<ToyTrainingProgress>? progress = null, CancellationToken cancel = default,
        int? stopAfter = null)
    {
        options.Validate();
        var model = new HookedTransformer(ModelConfig(options, tokenizer.VocabSize));
        try
        {
            int pad = tokenizer.Id(EndOfText);
            ToyTraining.Run(model, Optimiser(options) with { StopAfter = stopAfter }, seed => ToyTraining.Batch(
                IoiSentences.Generate(tokenizer, options.BatchSize, seed).Select(p => p.CleanTokens.Append(p.AnswerToken).ToArray()).ToList(),
                pad, options.AnswerWeight), progress, cancel);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
