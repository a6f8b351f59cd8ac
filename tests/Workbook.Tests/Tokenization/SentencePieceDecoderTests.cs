using System.Text.Json.Nodes;
using Workbook.Tokenization;

namespace Workbook.Tests.Tokenization;

/// <summary>
/// A Llama-style (SentencePiece BPE) tokenizer.json reads and round-trips with no code of its own: "▁" for spaces, byte
/// fallback for unknown characters, and the decoder chain Replace → ByteFallback → Fuse → Strip (or Metaspace).
/// </summary>
public class SentencePieceDecoderTests
{
    static readonly string[] Words = { "▁Hello", "▁world" };

    /// <summary>Characters, the merges that build "▁Hello" and "▁world" from them, and the 256 byte tokens.</summary>
    static string TokenizerJson(string decoder)
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = vocab.Count;
        var merges = new JsonArray();
        foreach (var word in Words)
        {
            foreach (char c in word)
                if (!vocab.ContainsKey(c.ToString())) vocab[c.ToString()] = vocab.Count;
            for (int i = 2; i <= word.Length; i++)
            {
                merges.Add($"{word[..(i - 1)]} {word[i - 1]}");
                if (!vocab.ContainsKey(word[..i])) vocab[word[..i]] = vocab.Count;
            }
        }
        var root = new JsonObject
        {
            ["normalizer"] = JsonNode.Parse("""{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}"""),
            ["pre_tokenizer"] = null,
            ["decoder"] = JsonNode.Parse(decoder),
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges, ["byte_fallback"] = true, ["unk_token"] = "<unk>" },
        };
        return root.ToJsonString();
    }

    const string LlamaDecoder = """
        {"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}
        """;

    [Theory]
    [InlineData(LlamaDecoder)]
    [InlineData("""{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":false}]}""")]
    public void TextRoundTripsThroughWordsAndByteFallback(string decoder)
    {
        var tokenizer = HuggingFaceTokenizer.FromJson(TokenizerJson(decoder), "llama/tokenizer.json");
        var ids = tokenizer.Encode("Hello world");
        Assert.Equal(Words, ids.Select(tokenizer.TokenText));
        Assert.Equal("Hello world", tokenizer.Decode(ids));
        // "€" is not in the vocabulary: it is encoded as its three UTF-8 bytes and decoded back from them.
        var euro = tokenizer.Encode("Hello €");
        Assert.Equal(new[] { "▁Hello", "▁", "<0xE2>", "<0x82>", "<0xAC>" }, euro.Select(tokenizer.TokenText));
        Assert.Equal("Hello €", tokenizer.Decode(euro));
    }

    [Fact]
    public void BytesThatAreNotUtf8DecodeToReplacementCharacters()
    {
        var tokenizer = HuggingFaceTokenizer.FromJson(TokenizerJson(LlamaDecoder), "llama/tokenizer.json");
        int Id(string token) => tokenizer.TokenId(token)!.Value;
        Assert.Equal("\uFFFD\uFFFD world", tokenizer.Decode(new[] { Id("<0xFF>"), Id("<0xE2>"), Id("▁world") }));
    }

    [Fact]
    public void AnUnknownDecoderStepIsNamed()
    {
        var e = Assert.Throws<TokenizerException>(() => HuggingFaceTokenizer.FromJson(TokenizerJson("""{"type":"WordPiece","prefix":"##"}"""), "wp/tokenizer.json"));
        Assert.Contains("WordPiece", e.Message);
        Assert.Contains("wp/tokenizer.json", e.Message);
    }
}
