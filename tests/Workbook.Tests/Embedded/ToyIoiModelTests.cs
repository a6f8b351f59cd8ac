using System.Globalization;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Embedded;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Embedded;

/// <summary>The committed toy IOI checkpoint against its own model card, and the determinism of its training.</summary>
public class ToyIoiModelTests
{
    static string RepositoryFolder => Path.Combine(TestFiles.RepoRoot, ToyIoi.RepositoryFolder);

    /// <summary>Prompts the card's numbers were not measured on (the card uses seed <see cref="ToyIoiBuild.EvaluationSeed"/>).</summary>
    static IReadOnlyList<IoiPromptPair> OtherSeedPrompts(int count) => ToyIoi.Prompts(count, seed: 424242);

    [Fact]
    public void TheCommittedFolderIsWhatTheLibraryCarries()
    {
        Assert.True(ToyIoi.IsAvailable, "the toy-ioi checkpoint is not built into the library");
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "circuit.json", "evaluation.json", "README.md" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(RepositoryFolder, file)), File.ReadAllBytes(Path.Combine(ToyIoi.CheckpointFolder, file)));
        Assert.True(new FileInfo(Path.Combine(RepositoryFolder, "model.safetensors")).Length < 4_000_000, "the checkpoint should stay a few MB");

        using var viaAlias = ModelLoader.Load(ToyIoi.Alias);
        using var viaFolder = ModelLoader.Load(RepositoryFolder);
        using var scope = NewDisposeScope();
        var tokens = tensor(OtherSeedPrompts(4).Where(p => p.Template == OtherSeedPrompts(4)[0].Template).Select(p => p.CleanTokens.Select(x => (long)x).ToArray()).First()).unsqueeze(0);
        Assert.True(viaAlias.Forward(tokens).equal(viaFolder.Forward(tokens)).all().item<bool>());
        Assert.Equal(Architecture.Gpt2, viaAlias.Config.Architecture);
        Assert.Equal(ToyIoi.Tokenizer.VocabSize, viaAlias.Config.DVocab);
    }

    [Fact]
    public void TheCommittedTokenizerIsTheVocabularyTheCodeBuilds()
    {
        var built = ToyIoiTrainer.BuildTokenizer();
        Assert.Equal(built.Vocabulary, ToyIoi.Tokenizer.Vocabulary);
        Assert.Equal(0, ToyIoi.Tokenizer.Bos!.Value.Id);
        Assert.Equal(built.ToJson() + "\n", File.ReadAllText(Path.Combine(RepositoryFolder, "tokenizer.json")));
    }

    [Fact]
    public void ReachesTheCardsAccuracyOnPromptsFromAnotherSeed()
    {
        var card = ToyIoi.Evaluation;
        string readme = File.ReadAllText(Path.Combine(RepositoryFolder, "README.md"));
        Assert.Contains((100 * card.HeldOut.Accuracy).ToString("F1", CultureInfo.InvariantCulture) + "%", readme);
        Assert.Contains(card.HeldOut.MeanLogitDiff.ToString("F3", CultureInfo.InvariantCulture), readme);

        using var model = ToyIoi.Load();
        var score = ToyIoiAnalysis.Evaluate(model, OtherSeedPrompts(1500));
        // Binomial standard error of an accuracy near the card's over 1,500 prompts is below 1.3 points.
        Assert.True(score.Accuracy >= card.HeldOut.Accuracy - 0.03, $"accuracy {score.Accuracy:P1} vs the card's {card.HeldOut.Accuracy:P1}");
        Assert.True(Math.Abs(score.MeanLogitDiff - card.HeldOut.MeanLogitDiff) <= 0.1 * Math.Abs(card.HeldOut.MeanLogitDiff),
            $"mean logit diff {score.MeanLogitDiff:F3} vs the card's {card.HeldOut.MeanLogitDiff:F3}");
        Assert.True(score.Accuracy > 0.5, "well above chance");
    }

    [Fact]
    public void TheCircuitDoesWhatTheCardSays()
    {
        var card = ToyIoi.Evaluation;
        Assert.Equal(card.Circuit, ToyIoi.Circuit);
        Assert.NotEmpty(ToyIoi.Circuit);
        using var model = ToyIoi.Load();
        var prompts = OtherSeedPrompts(600);
        var full = ToyIoiAnalysis.Evaluate(model, prompts);
        var circuit = ToyIoiAnalysis.Evaluate(model, prompts, ToyIoiAnalysis.KeepOnly(ToyIoi.Circuit, model.Config.NHeads));
        double stated = card.CircuitOnly.MeanLogitDiff / card.HeldOut.MeanLogitDiff, measured = circuit.MeanLogitDiff / full.MeanLogitDiff;
        Assert.True(Math.Abs(stated - measured) < 0.1, $"circuit keeps {measured:P1} of the logit difference; the card says {stated:P1}");
        // Every circuit head matters on its own: ablating it everywhere moves the logit difference by the card's threshold.
        foreach (var head in ToyIoi.Circuit)
        {
            var ablated = ToyIoiAnalysis.Evaluate(model, prompts, ToyIoiAnalysis.OneHead(head.Layer, head.Head, model.Config.NHeads, (_, _) => true));
            Assert.True(Math.Abs(full.MeanLogitDiff - ablated.MeanLogitDiff) >= 0.8 * card.CircuitThreshold * full.MeanLogitDiff, $"{head.Name} does not matter");
        }
    }

    [Fact]
    public void RetrainingFromTheSameSeedIsBitwiseDeterministic()
    {
        var options = new ToyIoiTrainingOptions { Steps = 6, BatchSize = 8, WarmupSteps = 2 };
        var tokenizer = ToyIoiTrainer.BuildTokenizer();
        using var a = ToyIoiTrainer.Train(options, tokenizer);
        using var b = ToyIoiTrainer.Train(options, tokenizer);
        using var c = ToyIoiTrainer.Train(options with { Seed = options.Seed + 1 }, tokenizer);
        using var untrained = ToyIoiTrainer.Train(options with { Steps = 0 }, tokenizer);
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pc = c.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pu = untrained.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in a.named_parameters())
            Assert.True(p.equal(pb[name]).all().item<bool>(), $"{name} differs between two runs with the same seed");
        Assert.Contains(a.named_parameters(), p => !p.parameter.equal(pc[p.name]).all().item<bool>());
        Assert.False(a.embed.W_E.equal(pu["embed.W_E"]).all().item<bool>(), "training changed nothing");
        Assert.False(a.parameters().Any(p => p.requires_grad), "the trained model should come back frozen");
    }

    [Fact]
    public void TheHookBasedCircuitAnalysisAgreesWithThePatchingEngine()
    {
        // One template and order (one length, one set of positions); the node circuit keeps each circuit head at its
        // position and every non-head edge everywhere; the rest is mean-ablated with the ABC mean (spec C.1 convention).
        var prompts = ToyIoi.Prompts(40, seed: 99, template: 0, order: IoiNameOrder.Baba);
        using var model = ToyIoi.Load();
        using var scope = NewDisposeScope();
        var graph = ComputationGraph.Residual(model.Config);
        var positions = prompts[0].Positions;
        var kept = new List<CircuitEdge>();
        foreach (var edge in graph.Edges)
        {
            if (edge.Source.Kind != NodeKind.Head) kept.Add(new CircuitEdge(edge, null));
            else if (ToyIoi.Circuit.FirstOrDefault(h => h.Layer == edge.Source.Block && h.Head == edge.Source.Head) is { } head)
                kept.Add(new CircuitEdge(edge, positions[head.Position]));
        }
        var circuit = Circuit.From(graph, kept);
        long[,] Tokens(Func<IoiPromptPair, int[]> pick)
        {
            var t = new long[prompts.Count, prompts[0].CleanTokens.Length];
            for (int i = 0; i < prompts.Count; i++)
                for (int j = 0; j < t.GetLength(1); j++) t[i, j] = pick(prompts[i])[j];
            return t;
        }
        var batch = PromptPair.FromArrays(Tokens(p => p.CleanTokens), Tokens(p => p.CorruptTokens));
        using var means = MeanReference.Compute(model, graph, new[] { batch });
        var methodology = new Methodology
        {
            Component = Component.Node, Positions = TokenPositions.Specific, Value = AblationValue.Mean(MeanOver.Corrupt),
            Direction = PatchDirection.AblateClean, Ablate = AblatedSet.Complement,
        };
        var logits = CircuitPatching.PatchedLogits(model, circuit, methodology, batch, means)[.., positions.End];
        var answers = tensor(prompts.Select(p => (long)p.AnswerToken).ToArray()).unsqueeze(1);
        var wrong = tensor(prompts.Select(p => (long)p.WrongAnswerToken).ToArray()).unsqueeze(1);
        double engine = (logits.gather(1, answers) - logits.gather(1, wrong)).mean().item<float>();

        double hooks = ToyIoiAnalysis.Evaluate(model, prompts, ToyIoiAnalysis.KeepOnly(ToyIoi.Circuit, model.Config.NHeads)).MeanLogitDiff;
        double clean = ToyIoiAnalysis.Evaluate(model, prompts).MeanLogitDiff;
        Assert.True(Math.Abs(engine - hooks) < 1e-3, $"engine {engine:F5} vs hook analysis {hooks:F5}");
        Assert.True(Math.Abs(clean - hooks) > 0.1, "the ablation should change the logit difference");
    }
}
