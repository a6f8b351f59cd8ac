using Microsoft.ML.Tokenizers;

namespace Workbook.Tokenization;

/// <summary>GPT-2's byte-level BPE (Microsoft.ML.Tokenizers with its bundled GPT-2 data). BOS = EOS = &lt;|endoftext|&gt; (50256).</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    public const int EndOfText = 50256;
    static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    public string Name => "gpt2";
    public int VocabSize => 50257;
    public (string Text, int Id)? Bos => ("<|endoftext|>", EndOfText);

    public IReadOnlyList<int> Encode(string text) => Shared.Value.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true);

    /// <summary>The most UTF-8 bytes one GPT-2 token stands for (each id decoded once; a partial character decodes longer, which only loosens the bound).</summary>
    static readonly Lazy<int> LongestToken = new(() =>
        Math.Max(1, Enumerable.Range(0, EndOfText).Max(id => System.Text.Encoding.UTF8.GetByteCount(Shared.Value.Decode(new[] { id })))));

    /// <summary>
    /// As <see cref="Encode(string)"/>, refusing first, without encoding, a text whose pre-tokens (each at least its
    /// bytes / the longest token's bytes tokens) cannot fit in <paramref name="maxTokens"/>: the library's BPE slows
    /// down sharply on very long words.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, int maxTokens)
    {
        if (maxTokens < int.MaxValue && text.Length > maxTokens)
        {
            long atLeast = 0;
            foreach (var (start, length) in Shared.Value.PreTokenizer!.PreTokenize(text))
                atLeast += (System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(start, length)) + LongestToken.Value - 1) / LongestToken.Value;
            if (atLeast > maxTokens) throw TokenizerExtensions.TooLong(this, text, atLeast, maxTokens, exact: false);
        }
        var ids = Encode(text);
        return ids.Count <= maxTokens ? ids : throw TokenizerExtensions.TooLong(this, text, ids.Count, maxTokens, exact: true);
    }

    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);
}
