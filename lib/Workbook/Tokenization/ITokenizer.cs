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

    /// <summary>The text of <paramref name="ids"/>.</summary>
    string Decode(IEnumerable<int> ids);
}

public static class TokenizerExtensions
{
    /// <summary>Encodes a prompt, prepending exactly one BOS id when <paramref name="prependBos"/> is true.</summary>
    public static int[] EncodePrompt(this ITokenizer tokenizer, string text, bool prependBos)
    {
        var ids = tokenizer.Encode(text);
        if (!prependBos) return ids.ToArray();
        var bos = tokenizer.Bos ?? throw new InvalidOperationException($"Tokenizer '{tokenizer.Name}' has no BOS token to prepend.");
        return ids.Prepend(bos.Id).ToArray();
    }

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
