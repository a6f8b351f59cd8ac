using Workbook.Model;
using Workbook.Tasks;

namespace Workbook.Tests.Tasks;

/// <summary>Token-id prompts for stand-ins without their tokenizer have the real prompts' shape (spec D.3, D.4, A.3, A.4).</summary>
public class TokenIdPromptsTests
{
    [Fact]
    public void DocstringPromptsAre40TokensAfterBosWithTheSharedPrefixLabelsAnd13WrongAnswers()
    {
        var part = Assert.Single(TokenIdPrompts.For(KnownTasks.Docstring, KnownConfigs.AttnOnly4L, seed: 1, count: null));
        Assert.Equal(50, part.Count);                     // the paper's 50
        Assert.Equal(41, part.SeqLen);                    // 40 tokens + BOS
        Assert.Equal(11, part.SharedPrefix);              // clean and corrupt first differ at A_def (10) + BOS
        Assert.Equal(15, part.Positions["C_def"]);        // 14 + BOS
        Assert.Equal(40, part.Positions["param_3"]);
        Assert.All(part.Clean, p => Assert.Equal(0, p[0]));            // BOS (attn-only-4l's config has none: 0, <|endoftext|>)
        Assert.All(part.WrongAnswerValues!, w => Assert.Equal(13, w[0].Length));
        for (int i = 0; i < part.Count; i++)
        {
            Assert.Equal(part.Clean[i][part.Positions["C_def"]], (int)part.AnswerValues![i][0][0]); // the answer is C
            Assert.DoesNotContain(part.AnswerValues[i][0][0], part.WrongAnswerValues![i][0]);
            Assert.All(part.Clean[i].Concat(part.Corrupt[i]), t => Assert.InRange(t, 0, 48261));
        }
        // Prompts differ between seeds, not between runs.
        Assert.Equal(part.Clean[3], TokenIdPrompts.For(KnownTasks.Docstring, KnownConfigs.AttnOnly4L, 1, null)[0].Clean[3]);
        Assert.NotEqual(part.Clean[3], TokenIdPrompts.For(KnownTasks.Docstring, KnownConfigs.AttnOnly4L, 2, null)[0].Clean[3]);
    }

    [Fact]
    public void SportsPromptsAre19TokensAfterBosWithThePlayerWhereTheRealOnesHaveIt()
    {
        var part = Assert.Single(TokenIdPrompts.For(KnownTasks.SportsPlayers, KnownConfigs.Pythia28B, seed: 0, count: 200));
        Assert.Equal((200, 20, 13), (part.Count, part.SeqLen, part.SharedPrefix)); // 19 + BOS; prefix "<bos>Fact: ... golf\nFact:"
        Assert.Equal((13, 15, 19), (part.Positions["first_name_tok"], part.Positions["final_name_tok"], part.Positions["end"]));
        var sports = part.AnswerValues!.Select(a => a[0][0]).Distinct().ToList();
        Assert.Equal(3, sports.Count);                    // three sports, each the answer of a third of the prompts
        Assert.All(part.WrongAnswerValues!, w => Assert.Equal(2, w[0].Length));
        for (int i = 0; i < part.Count; i++)
            for (int t = 16; t < 20; t++) Assert.Equal(part.Clean[i][t], part.Corrupt[i][t]); // " plays the sport of" is shared
    }

    [Fact]
    public void IoiHasNoTokenIdForm()
    {
        Assert.False(TokenIdPrompts.Supports(KnownTasks.Ioi));
        Assert.Contains("need the model's tokenizer", Assert.Throws<ArgumentException>(() => TokenIdPrompts.For(KnownTasks.Ioi, KnownConfigs.Gpt2Small, 0, 2)).Message);
    }
}
