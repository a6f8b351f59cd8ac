using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Cli;
using Workbook.Embedded;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Evaluation;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Reliability;

/// <summary>Guards against silent no-ops and meaningless numbers: each one fails with a typed exception and a clear message.</summary>
public class GuardTests
{
    static readonly Lazy<HookedTransformer> Gpt2 = new(() => ModelLoader.Load(TestFiles.Fixture("tiny-gpt2")));

    static TokenizedDataset Data(int count = 12) => TokenizedDataset.Create(EvaluationTests.TokenDataset(7, count), null, false, false);

    static EvaluationRequest Request(CircuitChoice circuit, Methodology methodology, TokenizedDataset? part = null, HookedTransformer? model = null, int batchSize = 5) => new()
    {
        Model = model ?? Gpt2.Value, Task = EvaluationTests.TokenTask, Parts = new[] { part ?? Data() }, Circuit = circuit,
        Methodologies = new[] { methodology }, Metrics = new[] { MetricKind.LogitDiffRecovered }, BatchSize = batchSize,
    };

    static ComputationGraph EdgeGraph => ComputationGraph.Factorized(Gpt2.Value.Config);

    static CircuitChoice Edges(params string[] lines) =>
        CircuitChoice.Of(SymbolicCircuit.FromCircuit("test", Circuit.Parse(EdgeGraph, lines)));

    // ---------------------------------------------------------------- patches that change nothing

    [Fact]
    public void AblatingAnEmptyCircuitIsAnError()
    {
        var empty = CircuitChoice.Of(new SymbolicCircuit("empty", "no edges", GraphView.Factorized, true, Array.Empty<SymbolicEdge>()));
        var e = Assert.Throws<NoOpPatchException>(() => Evaluator.Run(Request(empty, new Methodology { Ablate = AblatedSet.Circuit })));
        Assert.Contains("the circuit is empty", e.Message);
        Assert.Contains("edge/specific/resample/ablate-clean/circuit", e.Message);
    }

    [Fact]
    public void AblatingACircuitWhoseEdgesAllLieInTheNeverPatchedPrefixIsAnError()
    {
        var circuit = Edges("A0.1->A1.2.Q@1", "MLP 0->Resid End@2");
        var methodology = new Methodology { Ablate = AblatedSet.Circuit, Positions = TokenPositions.Specific, NeverPatchedPrefix = 3 };
        var e = Assert.Throws<NoOpPatchException>(() => Evaluator.Run(Request(circuit, methodology)));
        Assert.Contains("never-patched prefix (the first 3 of 8 tokens)", e.Message);

        // The same circuit at all positions does patch (positions 3..7): no error, and the output changes.
        var rows = Evaluator.Run(Request(circuit, methodology with { Positions = TokenPositions.All }));
        Assert.Contains(rows, r => Math.Abs(r.Value - 100) > 1e-3);
    }

    [Fact]
    public void KeepingTheWholeModelStillGivesOneHundredPercent()
    {
        // Patching nothing is the legitimate identity when the circuit is the whole model (set = complement), with or without a prefix.
        var whole = CircuitChoice.Of(SymbolicCircuit.WholeModel(EdgeGraph));
        foreach (var prefix in new int?[] { null, 3 })
        {
            var rows = Evaluator.Run(Request(whole, new Methodology { NeverPatchedPrefix = prefix }));
            Assert.All(rows, r => Assert.Equal(100.0, r.Value, 3));
        }
    }

    [Fact]
    public void PatchedLogitsDirectlyRefuseANoOpAblation()
    {
        using var scope = NewDisposeScope();
        var graph = EdgeGraph;
        var batch = PromptPair.FromArrays(new long[,] { { 1, 2, 3, 4 } }, new long[,] { { 1, 2, 9, 9 } });
        var circuit = Circuit.Parse(graph, new[] { "A0.1->A1.2.Q@0", "A0.1->A1.2.K@1" });
        var methodology = new Methodology { Ablate = AblatedSet.Circuit, NeverPatchedPrefix = 2 };
        Assert.Throws<NoOpPatchException>(() => CircuitPatching.PatchedLogits(Gpt2.Value, circuit, methodology, batch));
        Assert.Throws<NoOpPatchException>(() => CircuitPatching.PatchedLogits(Gpt2.Value, Circuit.Empty(graph), methodology with { NeverPatchedPrefix = 0 }, batch));
        // Ablating the complement of the empty circuit patches everything: fine.
        CircuitPatching.PatchedLogits(Gpt2.Value, Circuit.Empty(graph), new Methodology(), batch).Dispose();
    }

    [Fact]
    public void AScenarioThatPatchesNoEdgeIsRefused()
    {
        const string json = """{"clean_tokens":[[1,2,3]],"corrupt_tokens":[[1,2,4]],"scenarios":[{"name":"empty","input":"clean","patch":"corrupt","patched_edges":[]}]}""";
        var e = Assert.Throws<FormatException>(() => ScenarioFile.Parse(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json)), "s.json"));
        Assert.Contains("s.json: scenario 'empty': patch 'corrupt' lists no patched edges", e.Message);
    }

    // ---------------------------------------------------------------- NaN and infinity

    /// <summary>Token-id prompts whose corrupt side always holds token 3 at position 4, which no clean prompt contains.</summary>
    static TokenizedDataset DataWithCorruptOnlyToken()
    {
        var source = EvaluationTests.TokenDataset(7, 12);
        var prompts = source.Prompts.Select(p =>
        {
            var clean = p.Clean.Tokens!.Select(t => t == 3 ? 4 : t).ToArray();
            var corrupt = p.Corrupt.Tokens!.Select(t => t == 3 ? 4 : t).ToArray();
            corrupt[4] = 3;
            return p with { Clean = PromptInput.FromTokens(clean), Corrupt = PromptInput.FromTokens(corrupt) };
        }).ToArray();
        return TokenizedDataset.Create(source with { Prompts = prompts }, null, false, false);
    }

    [Fact]
    public void NaNLogitsOfAPatchedRunNameTheMethodologyAndBatch()
    {
        // tiny-neox: its unembedding is not tied to the embedding, so only runs that read token 3 see the NaN.
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-neox"));
        using (no_grad()) model.embed.W_E[3] = full(model.Config.DModel, double.NaN);
        var circuit = Edges("A0.1->A1.2.Q");
        // The clean run never sees token 3, so the reference is finite; resampling from the corrupt run brings the NaN in.
        var e = Assert.Throws<NonFiniteLogitsException>(() => Evaluator.Run(Request(circuit, new Methodology { Positions = TokenPositions.All }, DataWithCorruptOnlyToken(), model)));
        Assert.Contains("edge/all/resample/ablate-clean/complement", e.Message);
        Assert.Contains("batch 1 of 3", e.Message);
        Assert.Contains("NaN", e.Message);
        // Zero ablation never reads the corrupt run: no NaN, no error.
        Evaluator.Run(Request(circuit, new Methodology { Value = AblationValue.Zero }, DataWithCorruptOnlyToken(), model));
    }

    [Fact]
    public void InfiniteLogitsOfTheUnpatchedModelAreNamed()
    {
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        using (no_grad()) model.ln_final!.b.fill_(double.PositiveInfinity);
        var e = Assert.Throws<NonFiniteLogitsException>(() => Evaluator.Run(Request(Edges("A0.1->A1.2.Q"), new Methodology(), model: model)));
        Assert.Contains("unpatched model", e.Message);
        Assert.Contains("first at prompt 0", e.Message);
    }

    // ---------------------------------------------------------------- prompt lengths and answers

    [Fact]
    public void PromptsOfUnequalLengthAreRefusedWithTheirIndex()
    {
        var source = EvaluationTests.TokenDataset(7, 6);
        var ragged = source.Prompts.Select((p, i) => i == 3
            ? p with { Clean = PromptInput.FromTokens(p.Clean.Tokens!.Append(1)), Corrupt = PromptInput.FromTokens(p.Corrupt.Tokens!.Append(1)) }
            : p).ToArray();
        var e = Assert.Throws<ArgumentException>(() => TokenizedDataset.Create(source with { Prompts = ragged }, null, false, false));
        Assert.Contains("prompt 3 is 9 tokens but prompt 0 is 8", e.Message);

        // A TokenizedDataset built by hand (not through Create) is checked by the evaluator before batching.
        var good = Data(6);
        var handMade = new TokenizedDataset
        {
            Name = "hand-made", Source = good.Source, Positions = good.Positions, AnswerValues = good.AnswerValues, WrongAnswerValues = good.WrongAnswerValues,
            TargetsAreTokenIds = good.TargetsAreTokenIds,
            Clean = good.Clean.Select((c, i) => i == 4 ? c.Take(7).ToArray() : c).ToArray(), Corrupt = good.Corrupt,
        };
        var e2 = Assert.Throws<ArgumentException>(() => Evaluator.Run(Request(Edges("A0.1->A1.2.Q"), new Methodology(), handMade)));
        Assert.Contains("'hand-made', prompt 4", e2.Message);
    }

    [Fact]
    public void AnAnswerThatIsNotOneTokenNamesThePrompt()
    {
        var tokenizer = ToyIoi.Tokenizer;
        var ioi = KnownTasks.Ioi.Generate(tokenizer, 0, 4)[0];
        var prompts = ioi.Prompts.Select((p, i) => i == 2 ? p with { Answers = AnswerList.FromTexts(new[] { " Mary John" }) } : p).ToArray();
        var e = Assert.Throws<ArgumentException>(() => TokenizedDataset.Create(ioi with { Prompts = prompts }, tokenizer, false, false));
        Assert.Contains("prompt 2, answers", e.Message);
        Assert.Contains("is 2 tokens", e.Message);
    }

    [Fact]
    public void AnswerIdsOutsideTheVocabularyAreRefused()
    {
        var source = EvaluationTests.TokenDataset(7, 6);
        var prompts = source.Prompts.Select((p, i) => i == 5 ? p with { Answers = AnswerList.FromTokenIds(new[] { new[] { 600 } }) } : p).ToArray();
        var part = TokenizedDataset.Create(source with { Prompts = prompts }, null, false, false);
        var e = Assert.Throws<ArgumentException>(() => Evaluator.Run(Request(Edges("A0.1->A1.2.Q"), new Methodology(), part)));
        Assert.Contains("prompt 5: answer token id 600 is outside the model's output vocabulary of 512", e.Message);
    }

    // ---------------------------------------------------------------- means over too few prompts

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BatchMeansNeedTwoPromptsInEveryBatch(bool tokenwise)
    {
        // 11 prompts in batches of 5: the last batch holds one prompt.
        var methodology = new Methodology { Value = AblationValue.Mean(MeanOver.Batch, tokenwise) };
        var e = Assert.Throws<TooFewPromptsForMeanException>(() => Evaluator.Run(Request(Edges("A0.1->A1.2.Q"), methodology, Data(11))));
        Assert.Contains("the smallest holding 1", e.Message);
        Assert.Contains("at least 2", e.Message);
        Evaluator.Run(Request(Edges("A0.1->A1.2.Q"), methodology, Data(12))); // 5, 5, 2: fine
    }

    [Fact]
    public void DatasetMeansNeedTwoPrompts()
    {
        var methodology = new Methodology { Value = AblationValue.Mean(MeanOver.Clean) };
        var e = Assert.Throws<TooFewPromptsForMeanException>(() => Evaluator.Run(Request(Edges("A0.1->A1.2.Q"), methodology, Data(1))));
        Assert.Contains("'tokens' (1 prompts)", e.Message);

        // The same check in the patching engine itself, for a mean reference of one prompt.
        using var scope = NewDisposeScope();
        var graph = EdgeGraph;
        var batch = PromptPair.FromArrays(new long[,] { { 1, 2, 3, 4 } }, new long[,] { { 1, 2, 9, 9 } });
        using var means = MeanReference.Compute(Gpt2.Value, graph, new[] { batch });
        Assert.Throws<TooFewPromptsForMeanException>(() => PatchValues.Compute(Gpt2.Value, graph, AblationValue.Mean(MeanOver.Clean), PatchDirection.AblateClean, batch, means));
        Assert.Throws<TooFewPromptsForMeanException>(() => PatchValues.Compute(Gpt2.Value, graph, AblationValue.Mean(MeanOver.Batch, tokenwise: false), PatchDirection.AblateClean, batch));
    }

    [Fact]
    public void TheCommandLinePrintsGuardErrorsOnOneLine()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = WorkbookCli.Run(new[] { "eval", "--model", "tracr-reverse", "--task", "tracr-reverse", "--circuit", "tracr-reverse-ours",
            "--ablation", "mean-batch", "--batch-size", "2", "--prompts", "3", "--metric", "mse" }, output, error);
        Assert.Equal(CliErrors.Failure, code);
        var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error: ")).ToList();
        Assert.Single(lines);
        Assert.Contains("at least 2", lines[0]);
    }
}
