using Workbook.Patching;
using Workbook.Tokenization;

namespace Workbook.Tasks;

/// <summary>Which outputs a task's metrics read: the last position (language-model tasks) or every position after BOS (Tracr).</summary>
public enum ReadPositions { Last, AllButFirst }

/// <summary>
/// A task of the paper: how its prompts are made and fed to the model (BOS, tail divergence), which outputs its
/// metrics read, and the settings of the paper's experiments (model, circuit, metric, mean ablation, prompt subset).
/// </summary>
public sealed record TaskDefinition
{
    public required string Name { get; init; }
    public required string Description { get; init; }
    /// <summary>Prepend one BOS token to text prompts (spec F.1).</summary>
    public bool PrependBos { get; init; }
    /// <summary>Never patch the prefix every clean/corrupt pair shares (spec F.3).</summary>
    public bool TailDivergence { get; init; }
    public ReadPositions Read { get; init; } = ReadPositions.Last;
    /// <summary>The generated prompts are token ids (Tracr), so no tokenizer is needed.</summary>
    public bool PreTokenized { get; init; }
    /// <summary>Whether the paper's edge graph for this task splits head inputs into Q, K and V.</summary>
    public bool SeparateQkv { get; init; } = true;
    /// <summary>The model the paper uses (a name a user can pass to --model when it is available).</summary>
    public required string PaperModel { get; init; }
    /// <summary>The official circuit (or circuit family) of the task.</summary>
    public required string PaperCircuit { get; init; }
    /// <summary>The metric the paper reports for the task (a <see cref="Metrics.MetricKind"/> CLI name).</summary>
    public required string PaperMetric { get; init; }
    /// <summary>The prompts the paper's mean ablation averages over.</summary>
    public MeanOver PaperMean { get; init; } = MeanOver.Corrupt;
    /// <summary>Prompts per dataset part in the paper's experiments.</summary>
    public int PaperPromptCount { get; init; }
    /// <summary>
    /// Prompts per forward pass by default: the paper's batch where memory allows (Sports: 10, since Pythia-2.8B's
    /// 1,057 sources take 0.76 GB per recorded batch of 10). Only batch-mean ablation depends on it.
    /// </summary>
    public int DefaultBatchSize { get; init; } = 50;
    /// <summary>The paper shuffles the file (Python seed 42) before taking its prompts (Sports, Tracr).</summary>
    public bool PaperShuffles { get; init; }
    /// <summary>
    /// Generates the task's dataset parts with a seed (seed 0 regenerates the original files where that is possible),
    /// <c>count</c> prompts per part (null: the generator's full size). IOI needs the tokenizer to locate word positions.
    /// </summary>
    public required Func<ITokenizer?, int, int?, IReadOnlyList<PromptDataset>> Generate { get; init; }

    /// <summary>
    /// The prompts an evaluation uses, per part: the paper's subset (shuffled like AutoCircuit when the paper did),
    /// limited to <paramref name="prompts"/> per part when given.
    /// </summary>
    public IReadOnlyList<PromptDataset> Select(IEnumerable<PromptDataset> parts, int? prompts) =>
        parts.Select(p => (PaperShuffles ? p.ShuffledLikeAutoCircuit() : p).Take(prompts ?? PaperPromptCount)).ToArray();

    /// <summary>
    /// Generates the prompts an evaluation uses (seeded): the paper's subset of each part, or <paramref name="prompts"/>
    /// per part. Only as many prompts are generated as needed when the paper takes the first ones unshuffled.
    /// </summary>
    public IReadOnlyList<PromptDataset> GenerateForEvaluation(ITokenizer? tokenizer, int seed, int? prompts) =>
        Select(Generate(tokenizer, seed, PaperShuffles ? null : prompts ?? PaperPromptCount), prompts);

    /// <summary>Tokenizes selected parts with this task's BOS and tail-divergence settings.</summary>
    public IReadOnlyList<TokenizedDataset> Tokenize(IEnumerable<PromptDataset> parts, ITokenizer? tokenizer) =>
        parts.Select(p => TokenizedDataset.Create(p, tokenizer, PrependBos, TailDivergence)).ToArray();
}
