namespace Workbook.Tasks;

/// <summary>A prompt as text (tokenized later, by the model's tokenizer) or as token ids (Tracr tasks).</summary>
public sealed record PromptInput
{
    public string? Text { get; private init; }
    public IReadOnlyList<int>? Tokens { get; private init; }

    public static PromptInput FromText(string text) => new() { Text = text ?? throw new ArgumentNullException(nameof(text)) };
    public static PromptInput FromTokens(IEnumerable<int> tokens) => new() { Tokens = tokens.ToArray() };

    public bool IsText => Text is not null;

    public override string ToString() => Text ?? "[" + string.Join(", ", Tokens!) + "]";
}

/// <summary>
/// The answers (or wrong answers) of one prompt: strings that must each be one token (LM tasks), or numbers given
/// per output position (Tracr tasks: token ids of the reversed sequence, or the fraction of x's so far).
/// </summary>
public sealed record AnswerList
{
    /// <summary>Answer strings, e.g. <c>[" Mary"]</c>; each is a single token of the model's tokenizer.</summary>
    public IReadOnlyList<string>? Texts { get; private init; }

    /// <summary>Per output position, the answer values at that position (AutoCircuit's <c>[[num], ...]</c>).</summary>
    public IReadOnlyList<IReadOnlyList<double>>? Values { get; private init; }

    /// <summary>True when the values are token ids (written as JSON integers), false for real-valued targets.</summary>
    public bool ValuesAreTokenIds { get; private init; }

    public static AnswerList FromTexts(IEnumerable<string> texts) => new() { Texts = texts.ToArray() };

    public static AnswerList FromTokenIds(IEnumerable<IEnumerable<int>> idsPerPosition) =>
        new() { Values = idsPerPosition.Select(p => (IReadOnlyList<double>)p.Select(i => (double)i).ToArray()).ToArray(), ValuesAreTokenIds = true };

    public static AnswerList FromValues(IEnumerable<IEnumerable<double>> valuesPerPosition) =>
        new() { Values = valuesPerPosition.Select(p => (IReadOnlyList<double>)p.ToArray()).ToArray() };

    public int Count => Texts?.Count ?? Values!.Count;

    public override string ToString() => Texts is not null
        ? "[" + string.Join(", ", Texts.Select(t => $"\"{t}\"")) + "]"
        : "[" + string.Join(", ", Values!.Select(v => "[" + string.Join(", ", v) + "]")) + "]";
}

/// <summary>One clean/corrupt prompt pair with the correct answers and the wrong answers they compete with.</summary>
public sealed record TaskPrompt(PromptInput Clean, PromptInput Corrupt, AnswerList Answers, AnswerList WrongAnswers);
