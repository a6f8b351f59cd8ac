using Workbook.Randomness;

namespace Workbook.Tasks.Generators;

/// <summary>
/// The two Tracr tasks (spec D.5): every sequence of 5 symbols, pre-tokenized with BOS first, each paired with a
/// randomly chosen different sequence as its corrupt prompt. X-Proportion (vocabulary w, x, y, z → ids 2..5, BOS 0;
/// 1,024 prompts) answers the fraction of x's up to each position; Reverse (vocabulary 1, 2, 3 → ids 0..2, BOS 3;
/// 243 prompts) answers the reversed sequence. The original files enumerate a Python set (hash order) and pair
/// unseeded; here sequences are in lexicographic order of the vocabulary and the pairing is seeded.
/// </summary>
public static class TracrGenerator
{
    public const int SequenceLength = 5;

    public static PromptDataset XProportion(int seed = 0)
    {
        var vocab = new[] { 2, 3, 4, 5 }; // w x y z
        const int x = 3;
        return Generate("tracr-xproportion", vocab, bos: 0, seed, (clean, corrupt) => (
            AnswerList.FromValues(Fractions(clean, x)),
            AnswerList.FromValues(Fractions(corrupt, x))));
    }

    public static PromptDataset Reverse(int seed = 0)
    {
        var vocab = new[] { 0, 1, 2 }; // "1" "2" "3"
        return Generate("tracr-reverse", vocab, bos: 3, seed, (clean, corrupt) => (
            AnswerList.FromTokenIds(clean.Reverse().Select(t => new[] { t })),
            AnswerList.FromTokenIds(corrupt.Reverse().Select(t => new[] { t }))));
    }

    // Fraction of x among the first i symbols, for i = 1..5 (computed as Python does: count / i in double).
    static IEnumerable<double[]> Fractions(int[] sequence, int x) =>
        Enumerable.Range(1, sequence.Length).Select(i => new[] { sequence.Take(i).Count(t => t == x) / (double)i });

    static PromptDataset Generate(string name, int[] vocab, int bos, int seed, Func<int[], int[], (AnswerList, AnswerList)> answers)
    {
        var sequences = new List<int[]>();
        void Build(int[] prefix)
        {
            if (prefix.Length == SequenceLength)
            {
                sequences.Add(prefix);
                return;
            }
            foreach (var v in vocab) Build(prefix.Append(v).ToArray());
        }
        Build(Array.Empty<int>());
        var rng = new PythonRandom(seed);
        var prompts = new List<TaskPrompt>(sequences.Count);
        for (int i = 0; i < sequences.Count; i++)
        {
            // A uniform choice among the other sequences: draw from n − 1 and skip over the clean one.
            int j = (int)rng.RandBelow(sequences.Count - 1);
            if (j >= i) j++;
            var (ans, wrong) = answers(sequences[i], sequences[j]);
            prompts.Add(new TaskPrompt(
                PromptInput.FromTokens(sequences[i].Prepend(bos)),
                PromptInput.FromTokens(sequences[j].Prepend(bos)),
                ans, wrong));
        }
        return new PromptDataset { Name = name, Prompts = prompts };
    }
}
