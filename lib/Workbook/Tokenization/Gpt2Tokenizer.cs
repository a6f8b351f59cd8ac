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

    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);
}
