using Workbook.Tokenization;

namespace Workbook.Tasks;

/// <summary>
/// A <see cref="PromptDataset"/> turned into token ids for one model: every prompt the same length, answers as
/// token ids (or numeric targets), word positions in token coordinates (BOS offset applied, spec F.1–F.2) and the
/// shared clean/corrupt prefix that is never patched (tail divergence, spec D.1 and F.3).
/// </summary>
public sealed class TokenizedDataset
{
    public required string Name { get; init; }
    public required PromptDataset Source { get; init; }
    /// <summary>Clean prompts, [N][T].</summary>
    public required IReadOnlyList<int[]> Clean { get; init; }
    /// <summary>Corrupt prompts, [N][T].</summary>
    public required IReadOnlyList<int[]> Corrupt { get; init; }
    /// <summary>Answer token ids per prompt (LM tasks), [N][n_answers]; null for numeric targets.</summary>
    public IReadOnlyList<int[]>? AnswerIds { get; init; }
    public IReadOnlyList<int[]>? WrongAnswerIds { get; init; }
    /// <summary>Targets per prompt and output position (Tracr tasks), [N][P][k]; token ids stored as numbers when <see cref="TargetsAreTokenIds"/>.</summary>
    public IReadOnlyList<double[][]>? AnswerValues { get; init; }
    public IReadOnlyList<double[][]>? WrongAnswerValues { get; init; }
    public bool TargetsAreTokenIds { get; init; }
    /// <summary>Named positions in token coordinates (including the BOS offset when one was prepended).</summary>
    public required WordPositions Positions { get; init; }
    /// <summary>Token labels (with "&lt;|BOS|&gt;" first when a BOS was prepended), when the dataset has them.</summary>
    public IReadOnlyList<string>? SeqLabels { get; init; }
    public bool BosPrepended { get; init; }
    /// <summary>Positions before this index are identical in every clean/corrupt pair and never patched (0: none).</summary>
    public int SharedPrefix { get; init; }
    /// <summary>Whether <see cref="SharedPrefix"/> was computed (tail divergence on) or fixed at 0.</summary>
    public bool TailDivergence { get; init; }

    public int Count => Clean.Count;
    public int SeqLen => Clean[0].Length;

    /// <summary>The answers are token ids (logit difference, probabilities and correct-answer metrics apply).</summary>
    public bool HasTokenAnswers => AnswerIds is not null || TargetsAreTokenIds;

    /// <summary>
    /// Tokenizes <paramref name="dataset"/>. Text prompts need <paramref name="tokenizer"/>; <paramref name="prependBos"/>
    /// prepends exactly one BOS id to text prompts (pre-tokenized prompts are used as they are, BOS included).
    /// <paramref name="tailDivergence"/> records the longest prefix shared by every clean/corrupt pair as never patched.
    /// </summary>
    public static TokenizedDataset Create(PromptDataset dataset, ITokenizer? tokenizer, bool prependBos, bool tailDivergence)
    {
        if (dataset.Count == 0) throw new ArgumentException($"Dataset '{dataset.Name}' has no prompts.");
        bool text = dataset.Prompts[0].Clean.IsText;
        if (text && tokenizer is null)
            throw new ArgumentException($"Dataset '{dataset.Name}' has text prompts, so the model needs a tokenizer; none is available for it.");
        bool bos = text && prependBos;
        int[] Encode(PromptInput p, int index, string which)
        {
            if (!p.IsText) return p.Tokens!.ToArray();
            try
            {
                return tokenizer!.EncodePrompt(p.Text!, bos);
            }
            catch (Exception e) when (e is ArgumentException or TokenizerException or InvalidOperationException)
            {
                throw new ArgumentException($"Dataset '{dataset.Name}', prompt {index}, {which} prompt: {e.Message}", e);
            }
        }

        var clean = new List<int[]>(dataset.Count);
        var corrupt = new List<int[]>(dataset.Count);
        for (int i = 0; i < dataset.Count; i++)
        {
            var p = dataset.Prompts[i];
            if (p.Clean.IsText != text || p.Corrupt.IsText != text)
                throw new ArgumentException($"Dataset '{dataset.Name}', prompt {i}: prompts must all be text or all token ids, like prompt 0.");
            var c = Encode(p.Clean, i, "clean");
            var x = Encode(p.Corrupt, i, "corrupt");
            if (c.Length != x.Length)
                throw new ArgumentException($"Dataset '{dataset.Name}', prompt {i}: the clean prompt is {c.Length} tokens but the corrupt one {x.Length}; clean and corrupt prompts must have the same length.");
            if (i > 0 && c.Length != clean[0].Length)
                throw new ArgumentException($"Dataset '{dataset.Name}', prompt {i} is {c.Length} tokens but prompt 0 is {clean[0].Length}; every prompt of a dataset must have the same length (no padding).");
            clean.Add(c);
            corrupt.Add(x);
        }
        int seqLen = clean[0].Length;

        IReadOnlyList<int[]>? answerIds = null, wrongIds = null;
        IReadOnlyList<double[][]>? answerValues = null, wrongValues = null;
        bool tokenIds = false;
        var first = dataset.Prompts[0].Answers;
        if (first.Texts is not null)
        {
            if (tokenizer is null) throw new ArgumentException($"Dataset '{dataset.Name}' has text answers, so the model needs a tokenizer.");
            int[] Ids(AnswerList a, int i, string what) => (a.Texts ?? throw new ArgumentException($"Dataset '{dataset.Name}', prompt {i}: {what} must be text like prompt 0's."))
                .Select(t => SingleTokenAt(tokenizer, t, dataset.Name, i, what)).ToArray();
            answerIds = dataset.Prompts.Select((p, i) => Ids(p.Answers, i, "answers")).ToArray();
            wrongIds = dataset.Prompts.Select((p, i) => Ids(p.WrongAnswers, i, "wrong answers")).ToArray();
        }
        else
        {
            tokenIds = first.ValuesAreTokenIds;
            double[][] Values(AnswerList a, int i, string what) => (a.Values ?? throw new ArgumentException($"Dataset '{dataset.Name}', prompt {i}: {what} must be numbers like prompt 0's."))
                .Select(v => v.ToArray()).ToArray();
            answerValues = dataset.Prompts.Select((p, i) => Values(p.Answers, i, "answers")).ToArray();
            wrongValues = dataset.Prompts.Select((p, i) => Values(p.WrongAnswers, i, "wrong answers")).ToArray();
            int positions = answerValues[0].Length;
            if (positions >= seqLen + 1 || positions == 0)
                throw new ArgumentException($"Dataset '{dataset.Name}': {positions} answer positions do not fit prompts of {seqLen} tokens.");
            int bad = answerValues.Select((a, i) => (a, i)).Concat(wrongValues.Select((a, i) => (a, i))).FirstOrDefault(t => t.a.Length != positions, (null!, -1)).i;
            if (bad >= 0) throw new ArgumentException($"Dataset '{dataset.Name}', prompt {bad}: every prompt needs answers for {positions} output positions.");
        }

        var positionsNoBos = dataset.WordIdxs ?? WordPositions.Empty;
        foreach (var (label, index) in positionsNoBos.Entries)
            if ((long)index + (bos ? 1 : 0) >= seqLen)
                throw new ArgumentException($"Dataset '{dataset.Name}': word position '{label}' is {(long)index + (bos ? 1 : 0)}{(bos ? " (with BOS)" : "")}, beyond the {seqLen}-token prompts.");
        var shifted = positionsNoBos.Shifted(bos ? 1 : 0);

        int prefix = tailDivergence ? SharedPrefixOf(clean, corrupt) : 0;

        IReadOnlyList<string>? labels = dataset.SeqLabels is null ? null : (bos ? dataset.SeqLabels.Prepend("<|BOS|>").ToArray() : dataset.SeqLabels);
        return new TokenizedDataset
        {
            Name = dataset.Name, Source = dataset, Clean = clean, Corrupt = corrupt,
            AnswerIds = answerIds, WrongAnswerIds = wrongIds, AnswerValues = answerValues, WrongAnswerValues = wrongValues, TargetsAreTokenIds = tokenIds,
            Positions = shifted, SeqLabels = labels, BosPrepended = bos, SharedPrefix = prefix, TailDivergence = tailDivergence,
        };
    }

    /// <summary>The first position where any clean/corrupt pair differs (0 when no pair differs at all).</summary>
    static int SharedPrefixOf(IReadOnlyList<int[]> clean, IReadOnlyList<int[]> corrupt)
    {
        int seqLen = clean[0].Length, prefix = seqLen;
        for (int i = 0; i < clean.Count; i++)
        {
            int d = 0;
            while (d < seqLen && clean[i][d] == corrupt[i][d]) d++;
            prefix = Math.Min(prefix, d);
        }
        return prefix >= seqLen ? 0 : prefix;
    }

    static int SingleTokenAt(ITokenizer tokenizer, string text, string dataset, int prompt, string what)
    {
        try
        {
            return tokenizer.SingleToken(text);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Dataset '{dataset}', prompt {prompt}, {what}: {e.Message}", e);
        }
    }

    /// <summary>The first <paramref name="count"/> prompts (the shared prefix is recomputed over them).</summary>
    public TokenizedDataset Take(int count)
    {
        if (count < 1) throw new ArgumentException($"The number of prompts must be at least 1, got {count}.");
        if (count >= Count) return this;
        var clean = Clean.Take(count).ToArray();
        var corrupt = Corrupt.Take(count).ToArray();
        return new TokenizedDataset
        {
            Name = Name, Source = Source.Take(count), Clean = clean, Corrupt = corrupt, TailDivergence = TailDivergence,
            AnswerIds = AnswerIds?.Take(count).ToArray(), WrongAnswerIds = WrongAnswerIds?.Take(count).ToArray(),
            AnswerValues = AnswerValues?.Take(count).ToArray(), WrongAnswerValues = WrongAnswerValues?.Take(count).ToArray(),
            TargetsAreTokenIds = TargetsAreTokenIds, Positions = Positions, SeqLabels = SeqLabels, BosPrepended = BosPrepended,
            SharedPrefix = TailDivergence ? SharedPrefixOf(clean, corrupt) : 0,
        };
    }
}
