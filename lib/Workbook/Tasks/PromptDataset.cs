using Workbook.Randomness;

namespace Workbook.Tasks;

/// <summary>
/// A set of prompt pairs in AutoCircuit's dataset format (spec D.1): the prompts, optional labels per token
/// (<c>seq_labels</c>, without BOS) and named word positions (<c>word_idxs</c>, without BOS).
/// <see cref="Name"/> identifies the set within its task (e.g. "ABBA-3" for IOI template 3 in ABBA order).
/// </summary>
public sealed record PromptDataset
{
    public required string Name { get; init; }
    public IReadOnlyList<string>? SeqLabels { get; init; }
    public WordPositions? WordIdxs { get; init; }
    public required IReadOnlyList<TaskPrompt> Prompts { get; init; }

    public int Count => Prompts.Count;

    /// <summary>The first <paramref name="count"/> prompts (all when null or larger than the set).</summary>
    public PromptDataset Take(int? count)
    {
        if (count is < 1) throw new ArgumentException($"The number of prompts must be at least 1, got {count}.");
        return count is int n && n < Prompts.Count ? this with { Prompts = Prompts.Take(n).ToArray() } : this;
    }

    /// <summary>
    /// The prompts in the order AutoCircuit's loader gives them with <c>shuffle=True</c>: Python
    /// <c>random.seed(seed); random.shuffle(prompts)</c> (spec D.1, F.12; default seed 42).
    /// </summary>
    public PromptDataset ShuffledLikeAutoCircuit(int seed = 42)
    {
        var prompts = Prompts.ToList();
        new PythonRandom(seed).Shuffle(prompts);
        return this with { Prompts = prompts };
    }
}
