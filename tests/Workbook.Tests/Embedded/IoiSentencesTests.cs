using Workbook.Embedded;
using Workbook.Tokenization;

namespace Workbook.Tests.Embedded;

public class IoiSentencesTests
{
    // Spec D.2 word_idxs (no BOS), computed with GPT-2's tokenizer on AutoCircuit's files: IO, S1, S1+1, S2, end.
    static readonly int[][] Abba =
    {
        new[] { 2, 4, 5, 10, 14 }, new[] { 2, 4, 5, 14, 18 }, new[] { 2, 4, 5, 11, 17 }, new[] { 2, 4, 5, 13, 19 }, new[] { 2, 4, 5, 12, 14 },
        new[] { 1, 3, 4, 9, 13 }, new[] { 1, 3, 4, 11, 16 }, new[] { 1, 3, 4, 11, 17 }, new[] { 1, 3, 4, 10, 14 }, new[] { 1, 3, 4, 10, 14 },
        new[] { 4, 6, 7, 12, 16 }, new[] { 3, 5, 6, 11, 15 }, new[] { 2, 4, 5, 11, 13 }, new[] { 2, 4, 5, 11, 14 }, new[] { 1, 3, 4, 11, 14 },
    };

    static int[] Baba(int t) => new[] { Abba[t][1], Abba[t][0], Abba[t][0] + 1, Abba[t][3], Abba[t][4] };

    public static IEnumerable<object[]> Tokenizers() => new[] { new object[] { "gpt2" }, new object[] { "toy" } };

    static ITokenizer Make(string name) => name == "gpt2" ? new Gpt2Tokenizer() : ToyIoiTrainer.BuildTokenizer();

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void PositionsMatchThePaperTableForEveryTemplateAndOrder(string tokenizerName)
    {
        var tokenizer = Make(tokenizerName);
        for (int t = 0; t < 15; t++)
            foreach (var order in new[] { IoiNameOrder.Abba, IoiNameOrder.Baba })
            {
                var p = IoiSentences.Generate(tokenizer, 3, seed: (ulong)(t * 2 + (int)order), template: t, order: order);
                var want = order == IoiNameOrder.Abba ? Abba[t] : Baba(t);
                // GPT-2 splits template 11's sentence-initial "Afterwards" into "After" + "wards"; the word-level vocabulary does not.
                if (tokenizerName == "toy" && t == 11) want = want.Select(i => i - 1).ToArray();
                foreach (var prompt in p)
                {
                    var pos = prompt.Positions;
                    Assert.Equal(want, new[] { pos.IndirectObject, pos.Subject1, pos.Subject1Plus1, pos.Subject2, pos.End });
                    Assert.Equal(want[4] + 1, prompt.CleanTokens.Length);
                }
            }
    }

    [Fact]
    public void TheFirstTemplateReadsLikeThePaper()
    {
        var p = IoiSentences.Build(new Gpt2Tokenizer(), 0, IoiNameOrder.Baba, "Scott", "Jeremy", "hospital", "snack", new[] { "Michael", "Anderson", "Rachel" });
        Assert.Equal("Then, Jeremy and Scott went to the hospital. Jeremy gave a snack to", p.Clean);
        Assert.Equal("Then, Michael and Anderson went to the hospital. Rachel gave a snack to", p.Corrupt);
        var mary = IoiSentences.Build(new Gpt2Tokenizer(), 0, IoiNameOrder.Baba, "Mary", "John", "store", "drink", new[] { "Alan", "Amy", "Dean" });
        Assert.Equal((5335, 1757), (mary.AnswerToken, mary.WrongAnswerToken));   // " Mary", " John" (platform notes)
        var abba = IoiSentences.Build(new Gpt2Tokenizer(), 0, IoiNameOrder.Abba, "Scott", "Jeremy", "hospital", "snack", new[] { "Michael", "Anderson", "Rachel" });
        Assert.Equal("Then, Scott and Jeremy went to the hospital. Jeremy gave a snack to", abba.Clean);
    }

    [Fact]
    public void CorruptionReplacesExactlyTheThreeNamesWithOtherNames()
    {
        var tokenizer = ToyIoiTrainer.BuildTokenizer();
        foreach (var p in IoiSentences.Generate(tokenizer, 300, seed: 5))
        {
            var changed = Enumerable.Range(0, p.CleanTokens.Length).Where(i => p.CleanTokens[i] != p.CorruptTokens[i]).ToHashSet();
            var names = new[] { p.Positions.IndirectObject, p.Positions.Subject1, p.Positions.Subject2 };
            Assert.Subset(names.ToHashSet(), changed);
            Assert.Equal(3, changed.Count);
            foreach (int i in names)
            {
                string word = tokenizer.Decode(new[] { p.CorruptTokens[i] });
                Assert.Contains(word, IoiSentences.Names);
                Assert.NotEqual(p.IndirectObject, word);
                Assert.NotEqual(p.Subject, word);
            }
            Assert.NotEqual(p.IndirectObject, p.Subject);
            Assert.Equal(p.CleanTokens[p.Positions.IndirectObject], p.AnswerToken);
            Assert.Equal(p.CleanTokens[p.Positions.Subject2], p.WrongAnswerToken);
        }
    }

    [Fact]
    public void GenerationIsDeterministicPerSeedAndCoversTheDistribution()
    {
        var tokenizer = ToyIoiTrainer.BuildTokenizer();
        var a = IoiSentences.Generate(tokenizer, 2000, seed: 11);
        var b = IoiSentences.Generate(tokenizer, 2000, seed: 11);
        var c = IoiSentences.Generate(tokenizer, 2000, seed: 12);
        Assert.Equal(a.Select(p => p.Corrupt), b.Select(p => p.Corrupt));
        Assert.NotEqual(a.Select(p => p.Clean), c.Select(p => p.Clean));
        Assert.Equal(15, a.Select(p => p.Template).Distinct().Count());
        Assert.Equal(2, a.Select(p => p.Order).Distinct().Count());
        Assert.True(a.Select(p => p.IndirectObject).Distinct().Count() > 100);
    }

    [Fact]
    public void ToyVocabularyHoldsEveryWordOnce()
    {
        var t = ToyIoiTrainer.BuildTokenizer();
        Assert.Equal("<|endoftext|>", t.Vocabulary[0]);
        Assert.Equal(0, t.Bos!.Value.Id);
        foreach (var w in IoiSentences.Names.Concat(IoiSentences.Places).Concat(IoiSentences.Objects).Concat(new[] { ",", ".", "Then", "afterwards", "Afterwards" }))
            Assert.True(t.Contains(w), w);
        Assert.Equal(t.Vocabulary.Count, t.Vocabulary.Distinct().Count());
    }
}
