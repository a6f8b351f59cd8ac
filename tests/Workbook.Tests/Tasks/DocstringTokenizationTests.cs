using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tests.Support;

namespace Workbook.Tests.Tasks;

/// <summary>
/// Docstring prompts under attn-only-4l's own tokenizer (NeelNanda/gpt-neox-tokenizer-digits), opt-in because that
/// tokenizer is not on this machine: set <c>WORKBOOK_MODELS</c> to a hub cache holding <c>attn-only-4l</c> and run
/// <c>dotnet test --filter Category=RealWeights</c>. Spec D.3 and C.2: every prompt is 40 tokens (41 with BOS), the
/// labelled positions hold the arguments, and clean and corrupt first differ at A_def (11 with BOS).
/// </summary>
[Trait("Category", "RealWeights")]
public class DocstringTokenizationTests
{
    [SkippableFact]
    public void EveryDocstringPromptIs40TokensWithItsArgumentsAtTheLabelledPositions()
    {
        using var loaded = RealModels.LoadOrSkip("attn-only-4l");
        var tokenizer = loaded.RequireTokenizer();
        var file = DocstringGenerator.Generate(1000, seed: 0); // AutoCircuit's docstring_prompts.json, byte for byte (GeneratorTests)
        var data = KnownTasks.Docstring.Tokenize(new[] { file }, tokenizer)[0]; // throws if any prompt differs in length
        Assert.Equal(1000, data.Count);
        Assert.Equal(41, data.SeqLen);
        Assert.True(data.BosPrepended);
        Assert.All(data.Clean, t => Assert.Equal(tokenizer.Bos!.Value.Id, t[0]));
        Assert.Equal(DocstringGenerator.WordIdxs.Shifted(1).ToString(), data.Positions.ToString());
        for (int i = 0; i < data.Count; i++)
        {
            // "\ndef name(self, p1, p2, A, B, C, s1):..." and ":param A: ..." / ":param B: ..."
            var defArgs = file.Prompts[i].Clean.Text!.Split('(')[1].Split(')')[0].Split(", ");
            string Token(string label) => tokenizer.Decode(new[] { data.Clean[i][data.Positions[label]] });
            Assert.Equal(" " + defArgs[3], Token("A_def"));
            Assert.Equal(" " + defArgs[4], Token("B_def"));
            Assert.Equal(" " + defArgs[5], Token("C_def"));
            Assert.Equal(" " + defArgs[3], Token("A_doc"));
            Assert.Equal(" " + defArgs[4], Token("B_doc"));
            Assert.Equal(" " + defArgs[5], file.Prompts[i].Answers.Texts![0]);
            Assert.Equal(13, data.WrongAnswerIds![i].Length);
        }
        Assert.Equal(11, data.Take(50).SharedPrefix);
    }
}
