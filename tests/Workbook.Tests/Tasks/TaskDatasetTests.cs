using System.Text.RegularExpressions;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tests.Support;
using Workbook.Tokenization;

namespace Workbook.Tests.Tasks;

/// <summary>
/// The generated datasets, tokenized, agree with the spec's positions and BOS rules (D.2, F.1, F.2). The generators
/// reproduce AutoCircuit's files byte for byte where that is checked (<see cref="GeneratorTests"/>), so these tests need
/// no file from outside the repository.
/// </summary>
public class TaskDatasetTests
{
    static readonly Gpt2Tokenizer Gpt2 = new();

    static PromptDataset Ioi(IoiOrder order, int template, int count) => IoiGenerator.Generate(order, template, count, seed: 0, Gpt2);

    /// <summary>Spec D.2's table: template → (ABBA IO,S1,S1+1,S2,end; BABA ...; T without BOS).</summary>
    static Dictionary<int, (int[] Abba, int[] Baba, int T)> SpecTable()
    {
        string spec = TestFiles.ReadPaperReference();
        int start = spec.IndexOf("| template | ABBA IO,S1,S1+1,S2,end", StringComparison.Ordinal);
        var rows = new Dictionary<int, (int[], int[], int)>();
        foreach (Match m in Regex.Matches(spec[start..(start + 2000)], @"^\| (\d+) \| ([\d,]+) \| ([\d,]+) \| (\d+) \|", RegexOptions.Multiline))
        {
            int[] Parse(string s) => s.Split(',').Select(int.Parse).ToArray();
            rows[int.Parse(m.Groups[1].Value)] = (Parse(m.Groups[2].Value), Parse(m.Groups[3].Value), int.Parse(m.Groups[4].Value));
        }
        return rows;
    }

    public static IEnumerable<object[]> IoiParts() =>
        from order in new[] { IoiOrder.ABBA, IoiOrder.BABA } from t in Enumerable.Range(0, 15) select new object[] { order, t };

    [Theory]
    [MemberData(nameof(IoiParts))]
    public void IoiTemplatePositionsMatchSectionD2(IoiOrder order, int template)
    {
        var row = SpecTable()[template];
        var expected = order == IoiOrder.ABBA ? row.Abba : row.Baba;
        var file = Ioi(order, template, 200);
        var data = KnownTasks.Ioi.Tokenize(new[] { file }, Gpt2)[0];
        Assert.False(data.BosPrepended);
        Assert.Equal(0, data.SharedPrefix);
        Assert.Equal(row.T, data.SeqLen);
        var labels = new[] { "IO", "S1", "S1+1", "S2", "end" };
        Assert.Equal(expected, labels.Select(l => data.Positions[l]));
        Assert.Equal(data.SeqLen - 1, data.Positions["end"]);
        for (int i = 0; i < data.Count; i++)
        {
            // The IO name sits at IO and is the answer; the subject sits at S1 and S2 and is the wrong answer.
            Assert.Equal(data.AnswerIds![i][0], data.Clean[i][data.Positions["IO"]]);
            Assert.Equal(data.WrongAnswerIds![i][0], data.Clean[i][data.Positions["S1"]]);
            Assert.Equal(data.WrongAnswerIds![i][0], data.Clean[i][data.Positions["S2"]]);
        }
    }

    [Fact]
    public void PrependingBosShiftsEveryPositionByOne()
    {
        var file = Ioi(IoiOrder.ABBA, 0, 10);
        var plain = TokenizedDataset.Create(file, Gpt2, prependBos: false, tailDivergence: false);
        var bos = TokenizedDataset.Create(file, Gpt2, prependBos: true, tailDivergence: false);
        Assert.Equal(plain.SeqLen + 1, bos.SeqLen);
        Assert.All(bos.Clean, t => Assert.Equal(Gpt2Tokenizer.EndOfText, t[0]));
        Assert.All(bos.Clean, t => Assert.Equal(1, t.Count(id => id == Gpt2Tokenizer.EndOfText))); // exactly one BOS
        foreach (var (label, index) in plain.Positions.Entries) Assert.Equal(index + 1, bos.Positions[label]);
        Assert.Equal(plain.Clean[3], bos.Clean[3][1..]);
        // Answers are tokenized without BOS.
        Assert.Equal(plain.AnswerIds![3], bos.AnswerIds![3]);
    }

    [Fact]
    public void TailDivergenceFindsTheSharedPrefix()
    {
        // Sports prompts share "Fact: Tiger Woods plays the sport of golf\nFact:" (12 tokens, 13 with BOS, spec A.4).
        // GPT-2 splits the names differently from Pythia, so keep the pairs whose GPT-2 lengths agree.
        var sports = SportsPlayersGenerator.Generate(seed: 0);
        sports = sports with { Prompts = sports.Prompts.Where(p => Gpt2.Encode(p.Clean.Text!).Count == 19 && Gpt2.Encode(p.Corrupt.Text!).Count == 19).Take(20).ToArray() };
        Assert.True(sports.Count >= 5);
        var data = TokenizedDataset.Create(sports, Gpt2, prependBos: true, tailDivergence: true);
        Assert.Equal(13, data.SharedPrefix);
        Assert.Equal(0, TokenizedDataset.Create(sports, Gpt2, prependBos: true, tailDivergence: false).SharedPrefix);
        Assert.Equal(13, data.Take(3).SharedPrefix);
        // Docstring: clean and corrupt first differ at A_def (10, or 11 with BOS) for the paper's 50 prompts.
        var doc = DocstringGenerator.Generate(1000, seed: 0);
        Assert.Equal(11, doc.WordIdxs!["A_def"] + 1);
        Assert.All(doc.Prompts.Take(50), p =>
        {
            string[] clean = p.Clean.Text!.Split(", "), corrupt = p.Corrupt.Text!.Split(", ");
            Assert.Equal(clean[..3], corrupt[..3]); // "\ndef name(self", the two prefix arguments
            Assert.NotEqual(clean[3], corrupt[3]);   // A_def
        });
    }

    [Fact]
    public void TracrPromptsAreUsedAsTheyAreWithPerPositionTargets()
    {
        var file = TracrGenerator.Reverse();
        var reverse = KnownTasks.TracrReverse.Tokenize(KnownTasks.TracrReverse.Select(new[] { file }, null), null)[0];
        Assert.Equal(200, reverse.Count);
        Assert.Equal(6, reverse.SeqLen);
        Assert.All(reverse.Clean, t => Assert.Equal(3, t[0])); // BOS already first, nothing prepended
        Assert.True(reverse.TargetsAreTokenIds);
        Assert.True(reverse.HasTokenAnswers);
        // The answer at output position i is the clean token at position 5 - i (reversal).
        for (int i = 0; i < reverse.Count; i++)
            for (int p = 0; p < 5; p++) Assert.Equal(reverse.Clean[i][5 - p], (int)reverse.AnswerValues![i][p][0]);
        // Shuffled like AutoCircuit: the first test prompt is dataset prompt 45 (spec Appendix E).
        Assert.Equal(file.Prompts[45].Clean.Tokens, reverse.Clean[0]);

        var xprop = KnownTasks.TracrXProportion.Tokenize(new[] { TracrGenerator.XProportion() }, null)[0];
        Assert.False(xprop.HasTokenAnswers);
        Assert.Equal(1024, xprop.Count);
    }

    [Fact]
    public void BadDatasetsAreRejectedWithReasons()
    {
        Assert.Contains("needs a tokenizer", Assert.Throws<ArgumentException>(() =>
            TokenizedDataset.Create(Ioi(IoiOrder.ABBA, 0, 2), null, false, false)).Message);
        var mixed = Ioi(IoiOrder.ABBA, 0, 2);
        mixed = mixed with { Prompts = new[] { mixed.Prompts[0], mixed.Prompts[1] with { Clean = PromptInput.FromText("Then, Scott went") , Corrupt = PromptInput.FromText("Then, Bob went") } } };
        Assert.Contains("prompt 1 is", Assert.Throws<ArgumentException>(() => TokenizedDataset.Create(mixed, Gpt2, false, false)).Message);
        var multiToken = mixed with { Prompts = new[] { mixed.Prompts[0] with { Answers = AnswerList.FromTexts(new[] { " Scottington Jr" }) } } };
        Assert.Contains("exactly one token", Assert.Throws<ArgumentException>(() => TokenizedDataset.Create(multiToken, Gpt2, false, false)).Message);
        Assert.Contains("\"prompts\"", Assert.Throws<FormatException>(() => AutoCircuitJson.Read("{\"word_idxs\":{}}", "x")).Message);
        Assert.Contains("prompt 0", Assert.Throws<FormatException>(() => AutoCircuitJson.Read("{\"prompts\":[{\"clean\":\"a\",\"corrupt\":[1],\"answers\":[\"a\"],\"wrong_answers\":[\"b\"]}]}", "x")).Message);
        Assert.Contains("word_idxs", Assert.Throws<FormatException>(() => AutoCircuitJson.Read("{\"word_idxs\":{\"IO\":-1},\"prompts\":[{\"clean\":\"a\",\"corrupt\":\"b\",\"answers\":[\"a\"],\"wrong_answers\":[\"b\"]}]}", "x")).Message);
        Assert.Throws<KeyNotFoundException>(() => KnownTasks.Get("iio"));
    }

    [Fact]
    public void PositionExpressionsResolveLabelsOffsetsAndRanges()
    {
        var p = new WordPositions(new KeyValuePair<string, int>[] { new("S1", 4), new("S1+1", 9), new("end", 14) });
        Assert.Equal(new[] { 9 }, p.Resolve("S1+1")); // an exact label wins over arithmetic
        Assert.Equal(new[] { 6 }, p.Resolve("S1+2"));
        Assert.Equal(new[] { 2 }, p.Resolve("S1-2"));
        Assert.Equal(Enumerable.Range(4, 11), p.Resolve("S1..end"));
        Assert.Throws<KeyNotFoundException>(() => p.Resolve("IO"));
        Assert.Throws<ArgumentException>(() => p.Resolve("end..S1"));
    }
}

/// <summary>The IOI task with a word-level tokenizer (like the toy IOI model's): positions follow the tokenizer.</summary>
public class IoiWithWordTokenizerTests
{
    /// <summary>One id per whitespace-separated word; unknown words are errors, as in a closed word-level vocabulary.</summary>
    sealed class WordTokenizer : ITokenizer
    {
        readonly List<string> _words;
        public WordTokenizer(IEnumerable<string> words) => _words = words.Distinct().ToList();
        public string Name => "words";
        public int VocabSize => _words.Count;
        public (string Text, int Id)? Bos => null;
        public IReadOnlyList<int> Encode(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => _words.IndexOf(w) is var i && i >= 0 ? i : throw new ArgumentException($"'{w}' is not a word of the vocabulary.")).ToArray();
        public string Decode(IEnumerable<int> ids) => string.Join(' ', ids.Select(i => _words[i]));
    }

    [Fact]
    public void PositionsAreFoundWithAnyTokenizerWhoseNamesAreSingleTokens()
    {
        var template = IoiGenerator.Template(IoiOrder.ABBA, 0); // "Then, [A] and [B] went to the [PLACE]. [B] gave a [OBJECT] to [A]"
        var words = template.Split(' ').Where(w => !w.Contains('[')).Concat(IoiGenerator.Names)
            .Concat(IoiGenerator.Places.Select(p => p + ".")).Concat(IoiGenerator.Objects);
        var tokenizer = new WordTokenizer(words);
        var data = IoiGenerator.Generate(IoiOrder.ABBA, 0, 20, seed: 0, tokenizer);
        // Words: Then, | A | and | B | went | to | the | PLACE. | B | gave | a | OBJECT | to
        Assert.Equal(1, data.WordIdxs!["IO"]);
        Assert.Equal(3, data.WordIdxs["S1"]);
        Assert.Equal(4, data.WordIdxs["S1+1"]);
        Assert.Equal(8, data.WordIdxs["S2"]);
        Assert.Equal(12, data.WordIdxs["end"]);
        Assert.False(data.WordIdxs.TryGet("punct", out _)); // "." is not a word of this vocabulary
        var tokenized = KnownTasks.Ioi.Tokenize(new[] { data }, tokenizer)[0];
        Assert.Equal(13, tokenized.SeqLen);
        for (int i = 0; i < tokenized.Count; i++)
        {
            Assert.Equal(tokenized.AnswerIds![i][0], tokenized.Clean[i][1]);
            Assert.Equal(tokenized.WrongAnswerIds![i][0], tokenized.Clean[i][8]);
        }
        // The prompts themselves do not depend on the tokenizer.
        var gpt2 = IoiGenerator.Generate(IoiOrder.ABBA, 0, 20, seed: 0, new Gpt2Tokenizer());
        Assert.Equal(gpt2.Prompts.Select(p => p.ToString()), data.Prompts.Select(p => p.ToString()));
    }
}
