using Workbook.Model;
using Workbook.Tasks.Generators;

namespace Workbook.Tasks;

/// <summary>
/// Prompts as seeded random token ids with the shape a task's real prompts have under the paper's tokenizer: the same
/// length (Docstring 40 tokens, Sports Players 19, each after one BOS), the same labelled positions, the same prefix
/// shared by every clean/corrupt pair (so the never-patched prefix is the paper's), corrupt prompts that differ where the
/// real ones do, and as many wrong answers. For random-weights stand-ins whose real tokenizer is not on the machine:
/// the work per prompt (and so timings and memory) is the paper's; the tokens mean nothing.
/// </summary>
public static class TokenIdPrompts
{
    /// <summary>A task's prompt shape. Positions exclude BOS, as in the datasets.</summary>
    sealed record Shape(int Tokens, int SharedPrefix, WordPositions Positions, string[] CorruptedLabels, string AnswerLabel, int WrongAnswers, bool FixedAnswers);

    static Shape? ShapeOf(TaskDefinition task) => task.Name switch
    {
        // spec D.3: 40 tokens; clean and corrupt first differ at A_def (10); the corruption redraws the def and doc arguments; answer C.
        "docstring" => new(40, 10, DocstringGenerator.WordIdxs, new[] { "A_def", "B_def", "C_def", "A_doc", "B_doc" }, "C_def", 13, FixedAnswers: false),
        // spec D.4: 19 tokens, the template's first 12 shared; the corrupt prompt names another player (12..14); 3 sports.
        "sports-players" => new(19, 12, SportsPlayersGenerator.WordIdxs, new[] { "first_name_tok..final_name_tok" }, "", 2, FixedAnswers: true),
        _ => null,
    };

    /// <summary>Whether <paramref name="task"/> has a token-id form (Docstring and Sports Players; IOI needs its tokenizer to place names).</summary>
    public static bool Supports(TaskDefinition task) => ShapeOf(task) is not null;

    /// <summary><paramref name="count"/> prompts (null: the paper's number) for a model with <paramref name="config"/>'s vocabulary and BOS.</summary>
    public static IReadOnlyList<TokenizedDataset> For(TaskDefinition task, TransformerConfig config, int seed, int? count)
    {
        var shape = ShapeOf(task) ?? throw new ArgumentException(
            $"Task '{task.Name}' has no token-id form: its prompts need the model's tokenizer (IOI places the names by tokenizing).");
        int n = count ?? task.PaperPromptCount;
        if (n < 1) throw new ArgumentException($"The number of prompts must be at least 1, got {n}.");
        int bos = config.BosTokenId ?? 0;
        int vocab = config.DVocabOut > 0 ? Math.Min(config.DVocab, config.DVocabOut) : config.DVocab;
        if (vocab < shape.Tokens + shape.WrongAnswers + 2) throw new ArgumentException($"A vocabulary of {vocab} tokens is too small for {task.Name}'s token-id prompts.");
        var rng = new Random(seed);
        int Draw() { int t; do t = rng.Next(vocab); while (t == bos); return t; }

        var template = Enumerable.Range(0, shape.Tokens).Select(_ => Draw()).ToArray();
        var corrupted = shape.CorruptedLabels.SelectMany(shape.Positions.Resolve).ToHashSet();
        var sports = Enumerable.Range(0, 3).Select(_ => Draw()).ToArray();
        var prompts = new List<TaskPrompt>(n);
        for (int i = 0; i < n; i++)
        {
            var clean = (int[])template.Clone();
            var corrupt = (int[])template.Clone();
            foreach (int p in corrupted)
            {
                clean[p] = Draw();
                do corrupt[p] = Draw(); while (corrupt[p] == clean[p]);
            }
            int answer;
            int[] wrong;
            if (shape.FixedAnswers)
            {
                answer = sports[i % 3];
                wrong = sports.Where((_, k) => k != i % 3).ToArray();
            }
            else
            {
                answer = clean[shape.Positions[shape.AnswerLabel]];
                var others = new HashSet<int> { answer };
                wrong = new int[shape.WrongAnswers];
                for (int k = 0; k < wrong.Length; k++)
                {
                    do wrong[k] = Draw(); while (!others.Add(wrong[k]));
                }
            }
            prompts.Add(new TaskPrompt(PromptInput.FromTokens(clean.Prepend(bos)), PromptInput.FromTokens(corrupt.Prepend(bos)),
                AnswerList.FromTokenIds(new[] { new[] { answer } }), AnswerList.FromTokenIds(new[] { wrong })));
        }
        // Pre-tokenized prompts carry their BOS, so positions are given with it.
        var dataset = new PromptDataset { Name = task.Name, WordIdxs = shape.Positions.Shifted(1), Prompts = prompts };
        var part = TokenizedDataset.Create(dataset, null, prependBos: false, tailDivergence: task.TailDivergence);
        if (task.TailDivergence && part.SharedPrefix != shape.SharedPrefix + 1)
            throw new InvalidOperationException($"Token-id prompts of {task.Name} share {part.SharedPrefix} tokens; the real ones share {shape.SharedPrefix + 1} (with BOS).");
        return new[] { part };
    }
}
