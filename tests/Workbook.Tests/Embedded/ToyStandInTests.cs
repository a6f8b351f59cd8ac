using System.Security.Cryptography;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Embedded;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tests.Support;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Tests.Embedded;

/// <summary>
/// The offline stand-ins of the Docstring and Sports figures (toy-docstring, toy-sports): the committed folders against
/// their cards, accuracy on prompts the cards did not use, the circuits' faithfulness, and that their tokenizers keep the
/// paper's token positions.
/// </summary>
public class ToyStandInTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static string Folder(string alias) => Path.Combine(TestFiles.RepoRoot, "data", "models", alias);

    static readonly Lazy<LoadedModel> Docstring = new(() => ModelLoader.LoadWithTokenizer(ToyDocstring.Alias));
    static readonly Lazy<LoadedModel> Sports = new(() => ModelLoader.LoadWithTokenizer(ToySports.Alias));

    static IReadOnlyList<TokenizedDataset> DocstringPrompts(int seed, int count) =>
        KnownTasks.Docstring.Tokenize(KnownTasks.Docstring.GenerateForEvaluation(Docstring.Value.Tokenizer, seed, count), Docstring.Value.Tokenizer);

    static IReadOnlyList<TokenizedDataset> SportsPrompts(int seed, IReadOnlyList<SportsPlayer>? players = null) =>
        KnownTasks.ToySports.Tokenize(new[] { SportsPlayersGenerator.Generate(seed, players ?? ToySports.Players) }, Sports.Value.Tokenizer);

    [Theory]
    [InlineData("toy-docstring")]
    [InlineData("toy-sports")]
    public void TheCommittedFolderIsWhatTheLibraryCarries(string alias)
    {
        string embedded = alias == ToyDocstring.Alias ? ToyDocstring.CheckpointFolder : ToySports.CheckpointFolder;
        foreach (var file in ToyCircuitFiles.ModelFiles)
            Assert.Equal(File.ReadAllBytes(Path.Combine(Folder(alias), file)), File.ReadAllBytes(Path.Combine(embedded, file)));
        Assert.True(new FileInfo(Path.Combine(Folder(alias), "model.safetensors")).Length < 2_000_000, "the checkpoint should stay well under 2 MB");
        using var viaAlias = ModelLoader.Load(alias);
        using var viaFolder = ModelLoader.Load(Folder(alias));
        using var scope = NewDisposeScope();
        var tokens = tensor(new long[] { 0, 2, 3, 4 }).unsqueeze(0);
        Assert.True(viaAlias.Forward(tokens).equal(viaFolder.Forward(tokens)).all().item<bool>());
    }

    [Fact]
    public void TheCommittedTokenizersAreTheVocabulariesTheCodeBuilds()
    {
        Assert.Equal(ToyDocstringTrainer.BuildTokenizer().ToJson() + "\n", File.ReadAllText(Path.Combine(Folder(ToyDocstring.Alias), "tokenizer.json")));
        Assert.Equal(ToySportsTrainer.BuildTokenizer().ToJson() + "\n", File.ReadAllText(Path.Combine(Folder(ToySports.Alias), "tokenizer.json")));
        Assert.Equal(WordLevelPreTokenizer.ByteLevel, ToyDocstring.Tokenizer.PreTokenizer);
        Assert.Equal(0, ToySports.Tokenizer.Bos!.Value.Id);
    }

    [Fact]
    public void DocstringPromptsKeepAttnOnly4lsLayout()
    {
        // attn-only-4l: 40 tokens without BOS, the arguments at A_def 10, B_def 12, C_def 14, A_doc 26, B_doc 33 (spec C.2).
        var tokenizer = ToyDocstring.Tokenizer;
        foreach (int seed in new[] { 0, 5 })
        {
            var source = DocstringGenerator.Generate(30, seed);
            var part = KnownTasks.Docstring.Tokenize(new[] { source }, tokenizer)[0];
            Assert.Equal(41, part.SeqLen);
            for (int i = 0; i < part.Count; i++)
            {
                string Token(string label) => tokenizer.Decode(new[] { part.Clean[i][part.Positions[label]] });
                string answer = source.Prompts[i].Answers.Texts![0];
                Assert.Equal(answer, Token("C_def"));                           // the answer is the third matching definition argument
                Assert.Contains($":param{Token("A_doc")}:", source.Prompts[i].Clean.Text);
                Assert.Contains($":param{Token("B_doc")}:", source.Prompts[i].Clean.Text);
                Assert.Equal(Token("B_def"), Token("B_doc"));                   // the second documented argument is B
                Assert.Equal("param", Token("param_3"));
                Assert.Equal(source.Prompts[i].Clean.Text, tokenizer.Decode(part.Clean[i].Skip(1)));
                Assert.Equal(13, part.WrongAnswerIds![i].Distinct().Count());
            }
        }
    }

    [Fact]
    public void SportsNamesAreThreeTokensAtThePapersPositions()
    {
        var tokenizer = ToySports.Tokenizer;
        var part = SportsPrompts(3)[0];
        Assert.Equal(20, part.SeqLen);   // 19 tokens and BOS, as the paper's table under Pythia's tokenizer
        Assert.Equal(240, part.Count);
        for (int i = 0; i < part.Count; i++)
        {
            var name = ((string)part.Source.Prompts[i].Clean.Text!).Split("Fact: ")[2].Replace(" plays the sport of", "");
            var parts = name.Split(' ');
            Assert.Equal(" " + parts[0], tokenizer.Decode(new[] { part.Clean[i][part.Positions["first_name_tok"]] }));
            Assert.Equal(" " + parts[2], tokenizer.Decode(new[] { part.Clean[i][part.Positions["final_name_tok"]] }));
            Assert.Equal(" of", tokenizer.Decode(new[] { part.Clean[i][part.Positions["end"]] }));
        }
        Assert.Equal(ToySports.Players.Count, ToySports.Players.Select(p => p.Name).Distinct().Count());
        Assert.Empty(ToySports.UnknownPlayers.Select(p => p.Name).Intersect(ToySports.Players.Select(p => p.Name)));
        Assert.All(Enum.GetValues<Sport>(), s => Assert.Equal(ToySports.PlayersPerSport, ToySports.Players.Count(p => p.Sport == s)));
    }

    [Fact]
    public void DocstringReachesTheCardsAccuracyOnPromptsOfAnotherSeed()
    {
        var card = ToyDocstring.Evaluation;
        Assert.Contains($"{100 * card.HeldOut.BeatsCandidates:F1}%", File.ReadAllText(Path.Combine(Folder(ToyDocstring.Alias), "README.md")));
        var score = ToyModelAnalysis.Score(Docstring.Value.Model, DocstringPrompts(seed: 4242, count: 500));
        // Chance of beating 13 candidates is 1/14; over 500 prompts the binomial standard error near the card's value is under 2 points.
        Assert.True(score.BeatsCandidates >= card.HeldOut.BeatsCandidates - 0.05, $"{score.BeatsCandidates:P1} vs the card's {card.HeldOut.BeatsCandidates:P1}");
        Assert.True(score.BeatsCandidates > 0.8, $"{score.BeatsCandidates:P1} is not well above chance (7.1%)");
    }

    /// <summary>
    /// toy-docstring routes the answer through positions its token-specific circuits do not keep, so specific and all
    /// positions give different verdicts (issue 19). Checked on prompts neither the search (seed 2) nor the grid (seed 0)
    /// used, prompt by prompt: the same prompts under both position choices, a paired comparison whose bootstrap interval
    /// of the median difference must exclude zero and whose sign test must reject "no difference".
    /// </summary>
    [Fact]
    public void DocstringSpecificAndAllPositionsDifferBeyondPromptNoise()
    {
        var loaded = Docstring.Value;
        var task = KnownTasks.Docstring;
        var parts = DocstringPrompts(seed: 13, count: 100);
        var circuits = CircuitChoice.Family(ToyDocstring.Alias, OfficialCircuits.Get("toy-docstring-nodes").Circuit, OfficialCircuits.Get("toy-docstring-edges").Circuit);
        var methodologies = (from component in new[] { Component.Node, Component.Edge }
                             from value in new[] { AblationValue.Resample, AblationValue.Mean(task.PaperMean) }
                             from positions in new[] { TokenPositions.Specific, TokenPositions.All }
                             select new Methodology { Component = component, Value = value, Positions = positions, Ablate = AblatedSet.Complement }).ToArray();
        var rows = Evaluator.Run(new EvaluationRequest
        {
            Model = loaded.Model, Task = task, Parts = parts, Circuit = circuits, Methodologies = methodologies,
            Metrics = new[] { MetricKind.LogitDiffRecovered }, BatchSize = task.DefaultBatchSize,
        });
        double[] Values(Methodology m) => rows.Where(r => r.Methodology == m).OrderBy(r => r.Part).ThenBy(r => r.Prompt).Select(r => r.Value).ToArray();
        var comparisons = methodologies.Where(m => m.Positions == TokenPositions.Specific)
            .Select(m => Statistics.Compare("specific", Values(m), "all", Values(m with { Positions = TokenPositions.All }), seed: 1)).ToList();
        var largest = comparisons.MaxBy(c => Math.Abs(c.MedianDifference))!;
        foreach (var c in comparisons) output.WriteLine($"specific − all: median {c.MedianDifference:F1} (CI {c.MedianDifferenceCi.Low:F1}..{c.MedianDifferenceCi.High:F1}), {c.Positive}+ {c.Negative}−, sign p {c.SignTestP:G2}");
        Assert.Equal(100, largest.Count);
        Assert.True(Math.Abs(largest.MedianDifference) >= MinPositionGap, $"specific vs all: median paired difference {largest.MedianDifference:F1} points");
        Assert.True(largest.MedianDifferenceCi.Low > 0 || largest.MedianDifferenceCi.High < 0, $"the interval {largest.MedianDifferenceCi.Low:F1}..{largest.MedianDifferenceCi.High:F1} holds zero");
        Assert.True(largest.SignTestP < 1e-3, $"sign test p = {largest.SignTestP:G2}");
    }

    /// <summary>Points of percent: several times the per-prompt noise of a median over 100 prompts, which the interval checks separately.</summary>
    const double MinPositionGap = 3;

    [Fact]
    public void EveryToyRecipeRejectsABadScheduleOrShapeWithOneClearMessage()
    {
        // The three recipes share their checks (ToyTraining.ValidateRecipe/ValidateShape): each rejects the same bad values.
        var recipes = new Func<double, int, int, object>[]
        {
            (lr, warmup, heads) => new ToyIoiTrainingOptions { LearningRate = lr, WarmupSteps = warmup, Heads = heads }.Validate(),
            (lr, warmup, heads) => new ToyDocstringTrainingOptions { LearningRate = lr, WarmupSteps = warmup, Heads = heads }.Validate(),
            (lr, warmup, heads) => new ToySportsTrainingOptions { LearningRate = lr, WarmupSteps = warmup, Heads = heads }.Validate(),
        };
        foreach (var validate in recipes)
        {
            Assert.Contains("Learning rate must be a positive number", Assert.Throws<ArgumentException>(() => validate(0, 100, 4)).Message);
            Assert.Contains("Learning rate", Assert.Throws<ArgumentException>(() => validate(double.NaN, 100, 4)).Message);
            Assert.Contains("Warm-up steps must not be negative", Assert.Throws<ArgumentException>(() => validate(3e-3, -1, 4)).Message);
            Assert.Contains("must divide d_model", Assert.Throws<ArgumentException>(() => validate(3e-3, 100, 5)).Message);
            validate(3e-3, 100, 4);
        }
        Assert.Contains("longest training prompt", Assert.Throws<ArgumentException>(() => new ToyDocstringTrainingOptions { Context = 42 }.Validate()).Message);
    }

    [Fact]
    public void SportsRemembersItsPlayersAndKnowsNothingOfOthers()
    {
        var card = ToySports.Evaluation;
        var known = ToyModelAnalysis.Score(Sports.Value.Model, SportsPrompts(seed: 9));
        Assert.True(known.BeatsCandidates >= 0.95, $"memorised players: {known.BeatsCandidates:P1}");
        Assert.Equal(card.HeldOut.BeatsCandidates, known.BeatsCandidates, 2);  // the clean prompts are the same players; only the pairing differs
        // Players it never saw: chance is 1/3; 60 players give a standard error of about 6 points.
        var unknown = ToyModelAnalysis.Score(Sports.Value.Model, SportsPrompts(seed: 9, ToySports.UnknownPlayers));
        Assert.InRange(unknown.BeatsCandidates, 0.12, 0.6);
    }
}
