using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Tasks;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Evaluation;

/// <summary>Evaluation on the tiny fixture models with token-id tasks built here (the fixtures have no tokenizer).</summary>
public class EvaluationTests
{
    static readonly Lazy<HookedTransformer> Gpt2 = new(() => ModelLoader.Load(TestFiles.Fixture("tiny-gpt2")));
    static readonly Lazy<HookedTransformer> NeoX = new(() => ModelLoader.Load(TestFiles.Fixture("tiny-neox")));

    static HookedTransformer ModelNamed(string name) => name == "tiny-gpt2" ? Gpt2.Value : NeoX.Value;

    /// <summary>A token-id task: random prompts of 8 tokens; corrupt prompts differ at positions 2, 4 and 6; answer and wrong answer are random ids.</summary>
    internal static TaskDefinition TokenTask { get; } = new()
    {
        Name = "token-task", Description = "random token prompts", PaperModel = "tiny", PaperCircuit = "none", PaperMetric = "logit-diff-recovered",
        PaperPromptCount = 12,
        Generate = (_, seed, count) => new[] { TokenDataset(seed, count ?? 12) },
    };

    internal static PromptDataset TokenDataset(int seed, int count)
    {
        var rng = new Random(seed);
        var prompts = new List<TaskPrompt>();
        for (int i = 0; i < count; i++)
        {
            var clean = Enumerable.Range(0, 8).Select(_ => rng.Next(512)).ToArray();
            var corrupt = clean.ToArray();
            foreach (int p in new[] { 2, 4, 6 }) corrupt[p] = rng.Next(512);
            prompts.Add(new TaskPrompt(PromptInput.FromTokens(clean), PromptInput.FromTokens(corrupt),
                AnswerList.FromTokenIds(new[] { new[] { rng.Next(512) } }), AnswerList.FromTokenIds(new[] { new[] { rng.Next(512) } })));
        }
        var positions = new WordPositions(new KeyValuePair<string, int>[] { new("first", 2), new("middle", 4), new("end", 7) });
        return new PromptDataset { Name = "tokens", WordIdxs = positions, Prompts = prompts };
    }

    static TokenizedDataset Data(int count = 12) => TokenizedDataset.Create(TokenDataset(7, count), null, false, false);

    static EvaluationRequest Request(HookedTransformer model, CircuitChoice circuit, IEnumerable<Methodology> methodologies, params MetricKind[] metrics) => new()
    {
        Model = model, Task = TokenTask, Parts = new[] { Data() }, Circuit = circuit, Methodologies = methodologies.ToArray(),
        Metrics = metrics, BatchSize = 5,
    };

    public static IEnumerable<object[]> Models() => new[] { new object[] { "tiny-gpt2" }, new object[] { "tiny-neox" } };

    [Theory]
    [MemberData(nameof(Models))]
    public void KeepingTheWholeModelRecoversEveryPromptFully(string modelName)
    {
        var model = ModelNamed(modelName);
        foreach (var view in new[] { GraphView.Factorized, GraphView.Residual })
        {
            var graph = view == GraphView.Factorized ? ComputationGraph.Factorized(model.Config) : ComputationGraph.Residual(model.Config);
            var whole = CircuitChoice.Of(SymbolicCircuit.WholeModel(graph));
            var component = view == GraphView.Factorized ? Component.Edge : Component.Node;
            var methodologies = new[] { AblationValue.Resample, AblationValue.Zero, AblationValue.Mean(MeanOver.Corrupt), AblationValue.Mean(MeanOver.Batch) }
                .SelectMany(v => new[] { TokenPositions.All, TokenPositions.Specific }.Select(p => new Methodology { Component = component, Value = v, Positions = p }));
            var rows = Evaluator.Run(Request(model, whole, methodologies, MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans, MetricKind.Kl));
            Assert.Equal(8 * 12 * 3, rows.Count);
            Assert.All(rows.Where(r => r.Metric == MetricKind.LogitDiffRecovered), r => Assert.Equal(100.0, r.Value, 3));
            // The ratio-of-means rows are 100·LD_circuit(p)/mean LD_model: they average to exactly 100.
            foreach (var g in rows.Where(r => r.Metric == MetricKind.LogitDiffRecoveredOfMeans).GroupBy(r => r.Methodology))
                Assert.Equal(100.0, g.Average(r => r.Value), 3);
            Assert.All(rows.Where(r => r.Metric == MetricKind.Kl), r => Assert.True(r.Value < 1e-6, $"KL {r.Value}"));
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void AblatingEverythingWithResampleGivesTheCorruptModelsMetric(string modelName)
    {
        var model = ModelNamed(modelName);
        var data = Data();
        // The corrupt model's logit difference, computed directly.
        double[] expected;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var batch = Evaluator.Batches(data, 12, model.Device)[0];
            var outputs = FaithfulnessMetrics.ReadOutputs(model.Forward(batch.Pair.Corrupt), ReadPositions.Last);
            expected = FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiff, outputs, outputs, MetricTargets.For(data, 0, 12, 1));
        }
        foreach (var view in new[] { GraphView.Factorized, GraphView.Residual })
        {
            var graph = view == GraphView.Factorized ? ComputationGraph.Factorized(model.Config) : ComputationGraph.Residual(model.Config);
            var component = view == GraphView.Factorized ? Component.Edge : Component.Node;
            var whole = CircuitChoice.Of(SymbolicCircuit.WholeModel(graph));
            var empty = CircuitChoice.Of(new SymbolicCircuit("empty", "no edges", view, true, Array.Empty<SymbolicEdge>()));
            var ablateAll = Evaluator.Run(Request(model, whole, new[] { new Methodology { Component = component, Positions = TokenPositions.All, Ablate = AblatedSet.Circuit } }, MetricKind.LogitDiff));
            var emptyCircuit = Evaluator.Run(Request(model, empty, new[] { new Methodology { Component = component, Positions = TokenPositions.All } }, MetricKind.LogitDiff));
            foreach (var rows in new[] { ablateAll, emptyCircuit })
            {
                Assert.Equal(12, rows.Count);
                for (int i = 0; i < 12; i++) Assert.Equal(expected[i], rows.Single(r => r.Prompt == i).Value, 3);
            }
        }
    }

    [Fact]
    public void RatioOfMeansRowsAverageToTheRatioOfMeans()
    {
        var model = Gpt2.Value;
        var graph = ComputationGraph.Factorized(model.Config);
        // A small circuit: every edge into Resid End, at the last position.
        var circuit = Circuit.From(graph, graph.EdgesInto(graph.Destination("Resid End")).ToArray().Select(e => new CircuitEdge(e, 7)));
        var choice = CircuitChoice.Of(SymbolicCircuit.FromCircuit("small", circuit));
        var result = Evaluator.RunWithBaseline(Request(model, choice, new[] { new Methodology() }, MetricKind.LogitDiff, MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans));
        var ld = result.Rows.Where(r => r.Metric == MetricKind.LogitDiff).OrderBy(r => r.Prompt).Select(r => r.Value).ToArray();
        var modelLd = result.FullModel.Where(r => r.Metric == MetricKind.LogitDiff).OrderBy(r => r.Prompt).Select(r => r.Value).ToArray();
        var ratios = result.Rows.Where(r => r.Metric == MetricKind.LogitDiffRecovered).OrderBy(r => r.Prompt).Select(r => r.Value).ToArray();
        var ofMeans = result.Rows.Where(r => r.Metric == MetricKind.LogitDiffRecoveredOfMeans).Select(r => r.Value).ToArray();
        for (int i = 0; i < 12; i++) Assert.Equal(100 * ld[i] / modelLd[i], ratios[i], 6);
        Assert.Equal(100 * ld.Average() / modelLd.Average(), ofMeans.Average(), 6);
        Assert.All(result.FullModel.Where(r => r.Metric == MetricKind.LogitDiffRecovered), r => Assert.Equal(100, r.Value, 9));
        // The two aggregations generally differ.
        Assert.NotEqual(Math.Round(ratios.Average(), 3), Math.Round(ofMeans.Average(), 3));
    }

    [Fact]
    public void MethodologyMismatchesAreRejectedBeforeRunning()
    {
        var model = Gpt2.Value;
        var edges = CircuitChoice.Of(SymbolicCircuit.WholeModel(ComputationGraph.Factorized(model.Config)));
        var e = Assert.Throws<ArgumentException>(() => Evaluator.Run(Request(model, edges, new[] { new Methodology { Component = Component.Node } }, MetricKind.LogitDiff)));
        Assert.Contains("edge circuit", e.Message);
        var xprop = TokenizedDataset.Create(Workbook.Tasks.Generators.TracrGenerator.XProportion().Take(3), null, false, false);
        var bad = Request(model, edges, new[] { new Methodology() }, MetricKind.AnswerProb) with { Parts = new[] { xprop } };
        Assert.Contains("real-valued", Assert.Throws<ArgumentException>(() => Evaluator.Run(bad)).Message);
    }

    [Fact]
    public void ProgressCountsEveryPromptOfEveryMethodologyUpToTheTotal()
    {
        var model = Gpt2.Value;
        var seen = new List<WorkProgress>();
        var request = Request(model, CircuitChoice.Of(SymbolicCircuit.WholeModel(ComputationGraph.Factorized(model.Config))),
            new[] { new Methodology(), new Methodology { Value = AblationValue.Zero } }, MetricKind.LogitDiff) with { Progress = new SynchronousProgress<WorkProgress>(seen.Add) };
        Evaluator.Run(request);
        // 12 prompts in batches of 5 (5, 5, 2) under 2 methodologies: 24 prompt evaluations, counted batch by batch.
        Assert.All(seen, p => Assert.Equal(24, p.Total));
        Assert.Equal(0, seen[0].Done);
        for (int i = 1; i < seen.Count; i++) Assert.True(seen[i].Done >= seen[i - 1].Done, $"progress went back at report {i}");
        Assert.Equal(new long[] { 0, 5, 10, 15, 20, 22, 24 }, seen.Select(p => p.Done).Distinct()); // batch by batch, every methodology on each
        Assert.True(seen[^1].Finished);
        Assert.All(seen.Where(p => p.Done is > 0 and < 24), p => Assert.NotNull(p.Remaining));
    }
}
