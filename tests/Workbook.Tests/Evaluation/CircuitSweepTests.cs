using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Curves;
using Workbook.Discovery;
using Workbook.Embedded;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Tests.Evaluation;

/// <summary>
/// <see cref="CircuitSweep"/> (many circuits, one methodology, stacked forwards) gives each circuit exactly the rows the
/// ordinary <see cref="Evaluator"/> gives it alone; faithfulness curves are the same stacked or one circuit at a time.
/// </summary>
public class CircuitSweepTests
{
    static readonly Lazy<LoadedModel> Toy = new(() => ModelLoader.LoadWithTokenizer(ToyIoi.Alias));

    static IReadOnlyList<TokenizedDataset> ToyParts() =>
        KnownTasks.Ioi.Tokenize(KnownTasks.Ioi.GenerateForEvaluation(Toy.Value.Tokenizer, 0, 12), Toy.Value.Tokenizer).Take(2).ToList();

    /// <summary>Seeded circuits of several sizes (as a curve or a sweep makes), named for the error messages.</summary>
    static IReadOnlyList<SymbolicCircuit> Circuits(ComputationGraph graph, int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            double keep = (i + 1.0) / (count + 1);
            var edges = graph.Edges.Where(_ => random.NextDouble() < keep).Select(e => new CircuitEdge(e, null)).ToList();
            if (edges.Count == 0) edges.Add(new CircuitEdge(graph.Edges[^1], null));
            return SymbolicCircuit.FromCircuit($"random-{i}", Circuit.From(graph, edges));
        }).ToList();
    }

    [Theory]
    [InlineData("edge/all/resample/ablate-clean/complement", 4)]
    [InlineData("edge/all/mean-corrupt/ablate-clean/complement", 3)]
    [InlineData("node/all/resample/ablate-clean/complement", 5)]
    [InlineData("edge/all/zero/restore-corrupt/circuit", 2)]
    public void EachCircuitGetsTheRowsOfTheOrdinaryEvaluator(string label, int circuitsPerForward)
    {
        var model = Toy.Value.Model;
        var parts = ToyParts();
        var methodology = Methodology.Parse(label);
        var graph = methodology.View == GraphView.Residual ? ComputationGraph.Residual(model.Config) : ComputationGraph.Factorized(model.Config, methodology.SeparateQkv);
        var circuits = Circuits(graph, 7, seed: 3);
        var metrics = new[] { MetricKind.LogitDiff, MetricKind.Kl };
        var sweep = CircuitSweep.Run(new SweepRequest
        {
            Model = model, Task = KnownTasks.Ioi, Parts = parts, Circuits = circuits, Methodology = methodology, Metrics = metrics,
            BatchSize = 4, CircuitsPerForward = circuitsPerForward,
        });
        Assert.Equal(circuits.Count, sweep.Rows.Count);
        for (int c = 0; c < circuits.Count; c++)
        {
            var alone = Evaluator.RunWithBaseline(new EvaluationRequest
            {
                Model = model, Task = KnownTasks.Ioi, Parts = parts, Circuit = CircuitChoice.Of(circuits[c]), Methodologies = new[] { methodology },
                Metrics = metrics, BatchSize = 4,
            });
            Assert.Equal(alone.Rows, sweep.Rows[c]); // records: part, prompt, methodology, metric and the exact value
            if (c == 0) Assert.Equal(alone.FullModel, sweep.FullModel);
        }
        // Not a trivial sweep: the circuits disagree.
        Assert.True(sweep.Rows.Select(r => r[0].Value).Distinct().Count() > 1);
    }

    [Fact]
    public void BadSweepsAreRefusedInOneLine()
    {
        var model = Toy.Value.Model;
        var parts = ToyParts();
        var edge = Methodology.Parse("edge/all/resample/ablate-clean/complement");
        var factorized = ComputationGraph.Factorized(model.Config, true);
        var request = new SweepRequest
        {
            Model = model, Task = KnownTasks.Ioi, Parts = parts, Circuits = Array.Empty<SymbolicCircuit>(), Methodology = edge, Metrics = new[] { MetricKind.LogitDiff },
        };
        Assert.Equal("Give at least one circuit to evaluate.", Assert.Throws<ArgumentException>(() => CircuitSweep.Run(request)).Message);
        var nodes = Circuits(ComputationGraph.Residual(model.Config), 1, 1);
        var wrongKind = Assert.Throws<ArgumentException>(() => CircuitSweep.Run(request with { Circuits = nodes }));
        Assert.Equal($"Circuit 0 ('random-0') is a node circuit, but methodology {edge.Label} ablates edges.", wrongKind.Message);
        // A circuit of another model's graph (Tracr Reverse's edge names do not exist in toy-ioi's).
        var other = Circuits(ComputationGraph.Factorized(KnownConfigs.TracrReverse, true), 1, 1);
        Assert.ThrowsAny<Exception>(() => CircuitSweep.Run(request with { Circuits = Circuits(factorized, 1, 1).Concat(other).ToList() }));
        var tooMany = Assert.Throws<ArgumentException>(() => CircuitSweep.Run(request with { Circuits = Circuits(factorized, 1, 1), CircuitsPerForward = 0 }));
        Assert.Equal($"The number of circuits per forward pass must be within 1..{CircuitStack.MaxCircuitsPerForward}, got 0.", tooMany.Message);
    }

    [Fact]
    public void ACurveIsTheSameStackedAndOneCircuitAtATime()
    {
        var task = KnownTasks.TracrXProportion;
        var model = ModelLoader.Load(task.PaperModel);
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 0, 30), null);
        var graph = ComputationGraph.Factorized(model.Config, task.SeparateQkv);
        var random = new Random(5);
        var scores = new EdgeScores(graph, graph.Edges.Select(_ => random.NextDouble()).ToArray(), new DiscoveryInfo
        {
            Model = "tracr-xproportion", Task = task.Name, Algorithm = DiscoveryAlgorithm.Eap, Search = SearchSpace.Edge,
            Ablation = AblationValue.Resample, Target = DiscoveryTarget.Mse, Prompts = 0, Seed = 0,
        });
        var request = new CurveRequest
        {
            Model = model, Task = task, Parts = parts, Scores = scores, Methodologies = FaithfulnessCurves.PaperGrid(), Grid = new[] { 1, 2, 4, 8, 16, 23 },
            BatchSize = 10, CircuitsPerForward = 1,
        };
        var one = FaithfulnessCurves.Compute(request);
        var stacked = FaithfulnessCurves.Compute(request with { CircuitsPerForward = 5 });
        Assert.Equal(one.Count, stacked.Count);
        for (int m = 0; m < one.Count; m++)
        {
            Assert.Equal(one[m].Points, stacked[m].Points);
            Assert.Equal((one[m].Cpr, one[m].Cmd, one[m].EmptyCircuit, one[m].FullModel), (stacked[m].Cpr, stacked[m].Cmd, stacked[m].EmptyCircuit, stacked[m].FullModel));
        }
    }
}
