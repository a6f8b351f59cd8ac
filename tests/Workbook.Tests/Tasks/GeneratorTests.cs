using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tests.Support;
using Workbook.Tokenization;

namespace Workbook.Tests.Tasks;

/// <summary>
/// The seeded generators regenerate AutoCircuit's original dataset files byte for byte. The files are oracles that
/// are not redistributed with the workbook: these tests skip unless they are present (see <see cref="TestFiles.AutoCircuitDataset"/>).
/// </summary>
public class GeneratorTests
{
    static string Original(string relative) => File.ReadAllText(TestFiles.AutoCircuitDataset(relative));

    public static IEnumerable<object[]> IoiParts() =>
        from order in new[] { IoiOrder.ABBA, IoiOrder.BABA } from t in Enumerable.Range(0, 15) select new object[] { order, t };

    [SkippableTheory]
    [Trait("Category", TestFiles.AutoCircuitCategory)]
    [MemberData(nameof(IoiParts))]
    public void IoiFilesAreRegeneratedByteForByte(IoiOrder order, int template)
    {
        var dataset = IoiGenerator.Generate(order, template, 1000, seed: 0, new Gpt2Tokenizer());
        string expected = Original($"ioi/ioi_{order}_template_{template}_prompts.json");
        string actual = AutoCircuitJson.Write(dataset);
        if (expected != actual)
        {
            var e = AutoCircuitJson.Read(expected, "expected");
            int first = Enumerable.Range(0, 1000).FirstOrDefault(i => e.Prompts[i].ToString() != dataset.Prompts[i].ToString(), -1);
            Assert.Fail($"{order}-{template}: first differing prompt {first}; expected word_idxs {e.WordIdxs}, got {dataset.WordIdxs}" +
                (first >= 0 ? $"\nexpected {e.Prompts[first]}\nactual   {dataset.Prompts[first]}" : ""));
        }
    }

    [SkippableFact]
    [Trait("Category", TestFiles.AutoCircuitCategory)]
    public void DocstringFileIsRegeneratedByteForByte()
    {
        var dataset = DocstringGenerator.Generate(1000, seed: 0);
        Assert.Equal(687, DocstringGenerator.Nouns.Count);
        Assert.Equal(111, DocstringGenerator.VariableNames.Count);
        string expected = Original("docstring_prompts.json");
        string actual = AutoCircuitJson.Write(dataset);
        if (expected != actual)
        {
            var e = AutoCircuitJson.Read(expected, "expected");
            int first = Enumerable.Range(0, 1000).FirstOrDefault(i => e.Prompts[i].ToString() != dataset.Prompts[i].ToString(), -1);
            Assert.Fail($"first differing prompt {first}" + (first >= 0 ? $"\nexpected {e.Prompts[first]}\nactual   {dataset.Prompts[first]}" : " (layout differs)"));
        }
    }

    [SkippableTheory]
    [Trait("Category", TestFiles.AutoCircuitCategory)]
    [InlineData("docstring_prompts.json")]
    [InlineData("sports-players/sports_players_pythia-2.8b-deduped_prompts.json")]
    [InlineData("tracr/tracr_reverse_len_5_prompts.json")]
    [InlineData("tracr/tracr_xproportion_len_5_prompts.json")]
    [InlineData("ioi/ioi_BABA_template_4_prompts.json")]
    public void ImportThenExportReproducesTheFile(string file)
    {
        string original = Original(file);
        Assert.Equal(original, AutoCircuitJson.Write(AutoCircuitJson.Read(original, file)));
    }

    [SkippableFact]
    [Trait("Category", TestFiles.AutoCircuitCategory)]
    public void SportsPlayersTableGivesTheFilesCleanPrompts()
    {
        Assert.Equal(249, SportsPlayersGenerator.Players.Count);
        var file = AutoCircuitJson.Read(Original("sports-players/sports_players_pythia-2.8b-deduped_prompts.json"), "sports");
        var generated = SportsPlayersGenerator.Generate(seed: 1);
        Assert.Equal(249, generated.Count);
        // The same (clean prompt, answer) pairs as the original, whose corrupt pairing was unseeded.
        Assert.Equal(
            file.Prompts.Select(p => (p.Clean.Text, p.Answers.Texts![0])).OrderBy(x => x.Text, StringComparer.Ordinal),
            generated.Prompts.Select(p => (p.Clean.Text, p.Answers.Texts![0])).OrderBy(x => x.Text, StringComparer.Ordinal));
        var playerSport = SportsPlayersGenerator.Players.ToDictionary(p => p.Name, p => SportsPlayersGenerator.AnswerText(p.Sport));
        foreach (var p in generated.Prompts)
        {
            string corruptPlayer = p.Corrupt.Text!.Split("\nFact: ")[1].Replace(" plays the sport of", "");
            Assert.NotEqual(p.Answers.Texts![0], playerSport[corruptPlayer]);
            Assert.Equal(new[] { " football", " basketball", " baseball" }.Where(s => s != p.Answers.Texts[0]), p.WrongAnswers.Texts!);
        }
        Assert.Equal(file.WordIdxs!.ToString(), generated.WordIdxs!.ToString());
    }

    [SkippableFact]
    [Trait("Category", TestFiles.AutoCircuitCategory)]
    public void TracrDatasetsCoverEverySequenceWithTheFilesAnswers()
    {
        foreach (var (generated, file) in new[]
        {
            (TracrGenerator.XProportion(seed: 5), "tracr/tracr_xproportion_len_5_prompts.json"),
            (TracrGenerator.Reverse(seed: 5), "tracr/tracr_reverse_len_5_prompts.json"),
        })
        {
            var original = AutoCircuitJson.Read(Original(file), file);
            Assert.Equal(original.Count, generated.Count);
            string Key(PromptInput p) => string.Join(",", p.Tokens!);
            var answersByClean = original.Prompts.ToDictionary(p => Key(p.Clean), p => p.Answers.ToString());
            foreach (var p in generated.Prompts)
            {
                Assert.NotEqual(Key(p.Clean), Key(p.Corrupt));
                Assert.Equal(answersByClean[Key(p.Clean)], p.Answers.ToString());
                Assert.Equal(answersByClean[Key(p.Corrupt)], p.WrongAnswers.ToString());
            }
        }
    }

    [Fact]
    public void GeneratorsAreDeterministicPerSeed()
    {
        Assert.Equal(AutoCircuitJson.Write(DocstringGenerator.Generate(20, 3)), AutoCircuitJson.Write(DocstringGenerator.Generate(20, 3)));
        Assert.NotEqual(AutoCircuitJson.Write(DocstringGenerator.Generate(20, 3)), AutoCircuitJson.Write(DocstringGenerator.Generate(20, 4)));
        Assert.Equal(AutoCircuitJson.Write(TracrGenerator.Reverse(1)), AutoCircuitJson.Write(TracrGenerator.Reverse(1)));
    }
}
