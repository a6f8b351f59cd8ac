namespace Workbook.Tokenization;

/// <summary>
/// Text to token ids and back. A tokenizer never adds a BOS token by itself: prepending one is an
/// explicit choice of the caller (see <see cref="TokenizerExtensions.EncodePrompt"/>).
/// </summary>
public interface ITokenizer
{
    /// <summary>A short name for messages ("gpt2", a tokenizer.json path, ...).</summary>
    string Name { get; }

    /// <summary>Number of ids the tokenizer can produce.</summary>
    int VocabSize { get; }

    /// <summary>The BOS token's text and id, when the tokenizer defines one.</summary>
    (string Text, int Id)? Bos { get; }

    /// <summary>Token ids of <paramref name="text"/>, with no special tokens added.</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>
    /// Token ids of <paramref name="text"/>, or an <see cref="ArgumentException"/> when there would be more than
    /// <paramref name="maxTokens"/> (a model's context). Tokenizers that can bound the count cheaply refuse an over-long
    /// text before encoding it; the others encode, then check.
    /// </summary>
    IReadOnlyList<int> Encode(string text, int maxTokens)
    {
        var ids = Encode(text);
        return ids.Count <= maxTokens ? ids : throw TokenizerExtensions.TooLong(this, text, ids.Count, maxTokens, exact: true);
    }

    /// <summary>The text of <paramref name="ids"/>.</summary>
    string Decode(IEnumerable<int> ids);
}

public static class TokenizerExtensions
{
    /// <summary>
    /// Encodes a prompt, prepending exactly one BOS id when <paramref name="prependBos"/> is true; with
    /// <paramref name="maxTokens"/> (a model's context), a longer prompt is refused, before encoding where the tokenizer can tell.
    /// </summary>
    public static int[] EncodePrompt(this ITokenizer tokenizer, string text, bool prependBos, int maxTokens = int.MaxValue)
    {
        var ids = tokenizer.Encode(text, prependBos && maxTokens < int.MaxValue ? maxTokens - 1 : maxTokens);
        if (!prependBos) return ids.ToArray();
        var bos = tokenizer.Bos ?? throw new InvalidOperationException($"Tokenizer '{tokenizer.Name}' has no BOS token to prepend.");
        return ids.Prepend(bos.Id).ToArray();
    }

    internal static ArgumentException TooLong(ITokenizer tokenizer, string text, long tokens, int maxTokens, bool exact) => new(
        $"The text ({text.Length:N0} characters, starting \"{Util.ControlCharacters.Quote(text, 40)}\") is {(exact ? "" : "at least ")}{tokens:N0} tokens " +
        $"under tokenizer '{tokenizer.Name}', more than the {maxTokens:N0} allowed (the model's context).");

    /// <summary>The single id of <paramref name="text"/>; throws when it is not exactly one token (answers must be).</summary>
    public static int SingleToken(this ITokenizer tokenizer, string text)
    {
        var ids = tokenizer.Encode(text);
        if (ids.Count != 1)
            throw new ArgumentException(
                $"'{text}' is {ids.Count} tokens under tokenizer '{tokenizer.Name}' ([{string.Join(", ", ids)}]); answers must be exactly one token.");
        return ids[0];
    }
}
