using Workbook.Tokenization;

namespace Workbook.Tests.Tokenization;

public class WordLevelTokenizerTests
{
    static WordLevelTokenizer Small() => new("small", new[] { "<|endoftext|>", "[UNK]", "Then", ",", "Mary", "and", "John", ".", "to" },
        "[UNK]", new[] { "<|endoftext|>", "[UNK]" }, "<|endoftext|>");

    [Fact]
    public void SplitsWordsAndPunctuationRunsLikeHuggingFaceWhitespace()
    {
        var t = Small();
        Assert.Equal(new[] { "Then", ",", "Mary", "and", "John", "." }, t.PreTokenize("Then, Mary  and\tJohn.").ToArray());
        Assert.Equal(new[] { 2, 3, 4, 5, 6, 7 }, t.Encode("Then, Mary and John."));
        Assert.Equal(new[] { "a", "?!", "b_c", "9" }, t.PreTokenize("a?! b_c 9").ToArray());
    }

    [Fact]
    public void NeverAddsBosButCutsSpecialTokensOut()
    {
        var t = Small();
        Assert.Equal(new[] { 4 }, t.Encode(" Mary"));
        Assert.Equal(new[] { 0, 4 }, t.EncodePrompt("Mary", prependBos: true));
        Assert.Equal(new[] { 4, 0, 6 }, t.Encode("Mary<|endoftext|>John"));
        Assert.Equal(("<|endoftext|>", 0), t.Bos);
    }

    [Fact]
    public void UnknownWordIsAnErrorNamingIt()
    {
        var e = Assert.Throws<ArgumentException>(() => Small().Encode("Then, Bob and John"));
        Assert.Contains("'Bob'", e.Message);
    }

    [Fact]
    public void DecodeAttachesPunctuation()
    {
        var t = Small();
        Assert.Equal("Then, Mary and John.", t.Decode(t.Encode("Then, Mary and John.")));
        Assert.Equal("<|endoftext|> Mary", t.Decode(new[] { 0, 4 }));
    }

    [Fact]
    public void TokenizerJsonRoundTripsWithTheHuggingFaceFields()
    {
        var t = Small();
        string dir = Directory.CreateTempSubdirectory("wordlevel").FullName;
        try
        {
            string path = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(path, t.ToJson());
            using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path)))
            {
                var root = doc.RootElement;
                Assert.Equal("WordLevel", root.GetProperty("model").GetProperty("type").GetString());
                Assert.Equal("Whitespace", root.GetProperty("pre_tokenizer").GetProperty("type").GetString());
                Assert.Equal(4, root.GetProperty("model").GetProperty("vocab").GetProperty("Mary").GetInt32());
                Assert.Equal("[UNK]", root.GetProperty("model").GetProperty("unk_token").GetString());
            }
            // No tokenizer_config.json: no BOS unless asked for.
            var loaded = WordLevelTokenizer.Load(path);
            Assert.Equal(t.Vocabulary, loaded.Vocabulary);
            Assert.Null(loaded.Bos);
            Assert.Equal(t.Encode("Then, Mary and John."), loaded.Encode("Then, Mary and John."));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"bos_token": "<|endoftext|>"}""");
            Assert.Equal(0, WordLevelTokenizer.Load(path).Bos!.Value.Id);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void RejectsTokenizerFilesItCannotReadFaithfully()
    {
        string dir = Directory.CreateTempSubdirectory("wordlevel").FullName;
        try
        {
            string path = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(path, """{"model": {"type": "BPE", "vocab": {}}, "pre_tokenizer": {"type": "Whitespace"}}""");
            Assert.Contains("WordLevel", Assert.Throws<FormatException>(() => WordLevelTokenizer.Load(path)).Message);
            File.WriteAllText(path, """{"model": {"type": "WordLevel", "vocab": {"a": 0, "b": 2}, "unk_token": "a"}, "pre_tokenizer": {"type": "Whitespace"}}""");
            Assert.Contains("without gaps", Assert.Throws<FormatException>(() => WordLevelTokenizer.Load(path)).Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
