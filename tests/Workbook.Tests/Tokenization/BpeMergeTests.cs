using System.Diagnostics;
using System.Text.Json;
using CsCheck;
using Workbook.Tests.Cli;
using Workbook.Tests.Support;
using Workbook.Tokenization;

namespace Workbook.Tests.Tokenization;

/// <summary>
/// The BPE merge loop (issue 16, item 4): one 64 k-character word took ~100 s (a rescan of the word per merge) before
/// the context check rejected it. The queue-based merge must give the same ids as the rescanning algorithm, kept here
/// as the slow reference, on many words and the real GPT-2 vocabulary; long words must be fast, and a text longer than
/// a model's context is refused before it is encoded.
/// </summary>
public sealed class BpeMergeTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-bpe-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly Lazy<(HuggingFaceTokenizer Tokenizer, Dictionary<string, int> Vocab, Dictionary<(string, string), int> Ranks)> Gpt2 = new(() =>
    {
        string json = HuggingFaceTokenizerTests.Gpt2FromTiktokenJson.Value;
        using var doc = JsonDocument.Parse(json);
        var model = doc.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var ranks = new Dictionary<(string, string), int>();
        foreach (var m in model.GetProperty("merges").EnumerateArray())
        {
            var parts = m.GetString()!.Split(' ');
            ranks.TryAdd((parts[0], parts[1]), ranks.Count);
        }
        return (HuggingFaceTokenizer.FromJson(json, "gpt2-from-tiktoken"), vocab, ranks);
    });

    /// <summary>The algorithm as it was: rescan every adjacent pair, merge the lowest rank (leftmost on ties), repeat.</summary>
    static int[] ReferenceBpe(string word, Dictionary<string, int> vocab, Dictionary<(string, string), int> ranks)
    {
        var symbols = word.EnumerateRunes().Select(r => r.ToString()).ToList();
        while (symbols.Count > 1)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (ranks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank)
                {
                    bestRank = rank;
                    best = i;
                }
            if (best < 0) break;
            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }
        return symbols.Select(s => vocab[s]).ToArray();
    }

    static string Spell(string text) => string.Concat(System.Text.Encoding.UTF8.GetBytes(text).Select(b => HuggingFaceTokenizerTests.ByteCharOf(b)));

    /// <summary>Words as byte-level BPE sees them: English-like letters, repeats, digits, spaces, multi-byte characters.</summary>
    static readonly Gen<string> Words = Gen.OneOf(
        Gen.String[Gen.Char["etaoinshrdlucmfwypvbgkqjxz"], 1, 40],
        Gen.String[Gen.Char["ab"], 1, 300],
        Gen.Select(Gen.Char["aeiou xyz"], Gen.Int[1, 400], (c, n) => new string(c, n)),
        Gen.String[Gen.Char["0123456789 .,-"], 1, 60],
        Gen.String[Gen.Char["éüñ日本語😀\n\t "], 1, 30],
        Gen.String[Gen.Char, 1, 50]).Select(Spell);

    [Fact]
    public void QueueMergeMatchesTheRescanningReferenceOnTheGpt2Vocabulary()
    {
        var (tokenizer, vocab, ranks) = Gpt2.Value;
        Workbook.Tests.Reliability.FuzzHarness.ForAll("queue merge = rescanning merge", Words, 3000, word =>
        {
            var expected = ReferenceBpe(word, vocab, ranks);
            var actual = tokenizer.Bpe(word);
            Assert.True(expected.SequenceEqual(actual), $"'{word}': reference [{string.Join(",", expected)}], queue [{string.Join(",", actual)}]");
        });
    }

    [Fact]
    public void QueueMergeMatchesTheReferenceOnRealText()
    {
        var (tokenizer, vocab, ranks) = Gpt2.Value;
        string text = File.ReadAllText(Path.Combine(TestFiles.RepoRoot, "README.md"));
        foreach (var word in text.Split(' ', '\n').Where(w => w.Length > 0).Distinct().Take(3000).Select(w => Spell(" " + w)))
            Assert.Equal(ReferenceBpe(word, vocab, ranks), tokenizer.Bpe(word));
    }

    [Fact]
    public void A64kCharacterWordIsEncodedInMomentsNotMinutes()
    {
        var (tokenizer, _, _) = Gpt2.Value;
        var random = new Random(16);
        string word = new(Enumerable.Range(0, 65536).Select(_ => "etaoinshrdlu"[random.Next(12)]).ToArray());
        var clock = Stopwatch.StartNew();
        var ids = tokenizer.Encode(word);
        // Not a benchmark: the rescanning loop took ~100 s here, the queue well under a second; 10 s is the fuzzers' "hang" limit.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(word, tokenizer.Decode(ids));
        Assert.True(ids.Count > 65536 / 16);
    }

    [Fact]
    public void TextLongerThanTheContextIsRefusedBeforeEncoding()
    {
        var (tokenizer, _, _) = Gpt2.Value;
        string word = new('x', 4_000_000);
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ArgumentException>(() => tokenizer.Encode(word, 1024));
        Assert.Contains("at least", e.Message);
        Assert.Contains("more than the 1,024 allowed", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s");
        // Within the bound (300 characters could be 3 long tokens), the exact count decides.
        var exact = Assert.Throws<ArgumentException>(() => tokenizer.Encode(new string('x', 300), 10));
        Assert.DoesNotContain("at least", exact.Message);
        Assert.Equal(tokenizer.Encode("hello world"), tokenizer.Encode("hello world", 2));
    }

    [Fact]
    public void Gpt2TokenizerAlsoRefusesAnOverLongTextBeforeEncoding()
    {
        ITokenizer gpt2 = new Gpt2Tokenizer();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ArgumentException>(() => gpt2.Encode(new string('x', 1_000_000), 1024));
        Assert.Contains("at least", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(gpt2.Encode("When Mary and John"), gpt2.Encode("When Mary and John", 4));
        Assert.Throws<ArgumentException>(() => gpt2.Encode("When Mary and John", 3));
    }

    [Fact]
    public void RunRefusesAPromptLongerThanTheModelsContextWithOneLine()
    {
        // tiny-gpt2 (context 64) with a byte-level BPE tokenizer.json beside it.
        string folder = Path.Combine(_dir, "tiny");
        Directory.CreateDirectory(folder);
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(TestFiles.Fixture($"tiny-gpt2/{f}"), Path.Combine(folder, f));
        var vocab = Enumerable.Range(0, 256).ToDictionary(HuggingFaceTokenizerTests.ByteCharOf, b => b);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), JsonSerializer.Serialize(new
        {
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, use_regex = true },
            decoder = new { type = "ByteLevel" },
            model = new { type = "BPE", vocab, merges = new[] { "a a" }.Where(_ => false).ToArray() },
        }));
        var result = CliRunner.Run("run", "--model", folder, "--prompt", new string('a', 65536));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("more than the 64 allowed", result.Err);
        Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
