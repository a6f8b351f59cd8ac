using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Tests.Discovery;

/// <summary>
/// The position-by-position ACDC search the toy models' circuits come from (<see cref="CircuitPruning"/>), on a model whose
/// circuit is known by construction: Tracr Reverse, whose resample ground truth ("ours") is two edges.
/// </summary>
public class CircuitPruningTests
{
    static readonly Lazy<(Workbook.Model.HookedTransformer Model, IReadOnlyList<TokenizedDataset> Parts)> Reverse = new(() =>
        (ModelLoader.Load("tracr-reverse"), KnownTasks.TracrReverse.Tokenize(KnownTasks.TracrReverse.GenerateForEvaluation(null, 0, 60), null)));

    [Fact]
    public void FromTheWholeModelItKeepsExactlyTheResampleGroundTruth()
    {
        var (model, parts) = Reverse.Value;
        var graph = ComputationGraph.Factorized(model.Config);
        var result = CircuitPruning.Run(new PruningRequest
        {
            Model = model, Task = KnownTasks.TracrReverse, Parts = parts, Start = SymbolicCircuit.WholeModel(graph), Tau = 0.5,
        });
        var truth = OfficialCircuits.Get("tracr-reverse-ours").Circuit.Edges.Select(e => e.Name).Order().ToArray();
        Assert.Equal(truth, result.Circuit.Edges.Select(e => e.Name).Order().ToArray());
        // Keeping everything is the full model; the ground truth alone is exact under resample ablation (spec A.5).
        Assert.Equal(100, result.StartFaithfulness, 6);
        Assert.Equal(100, result.Faithfulness, 3);
        Assert.Equal(graph.EdgeCount, result.Steps.Count);
        // Removing either ground-truth edge costs far more than τ: the search tried and restored both.
        Assert.All(result.Steps.Where(s => truth.Contains(s.Entry.Name)), s => Assert.False(s.Removed));
        Assert.All(result.Steps.Where(s => truth.Contains(s.Entry.Name)), s => Assert.True(Math.Abs(100 - s.Without) > 10, $"{s.Entry}: {s.Without}"));
    }

    [Fact]
    public void ItsFaithfulnessIsWhatTheEvaluatorMeasures()
    {
        // The search measures with prepared patch values and masks; the evaluator from scratch. A circuit at token positions
        // on IOI (30 parts of different lengths, no shared prefix) and on Docstring (a never-patched prefix), resample and mean.
        foreach (var (alias, task, prompts) in new[] { ("toy-ioi", KnownTasks.Ioi, 2), ("toy-docstring", KnownTasks.Docstring, 12) })
        {
            using var loaded = ModelLoader.LoadWithTokenizer(alias);
            var parts = task.Tokenize(task.GenerateForEvaluation(loaded.Tokenizer, 3, prompts), loaded.Tokenizer);
            var circuit = OfficialCircuits.Get($"{alias}-edges").Circuit;
            foreach (var value in new[] { AblationValue.Resample, AblationValue.Mean(task.PaperMean) })
            {
                // Nothing prunable: the search only measures its start.
                var result = CircuitPruning.Run(new PruningRequest
                {
                    Model = loaded.Model, Task = task, Parts = parts, Start = circuit, Value = value, Prunable = _ => false,
                });
                var rows = Evaluator.Run(new EvaluationRequest
                {
                    Model = loaded.Model, Task = task, Parts = parts, Circuit = CircuitChoice.Of(circuit), Methodologies = new[] { result.Methodology },
                    Metrics = new[] { MetricKind.LogitDiffRecoveredOfMeans }, BatchSize = task.DefaultBatchSize,
                });
                double evaluated = rows.GroupBy(r => r.Part).Average(g => g.Average(r => r.Value));
                // Same masks and values, but batches of other sizes: float32 sums agree to about 1e-6 relative, not exactly.
                Assert.Equal(evaluated, result.StartFaithfulness, 3);
                Assert.Equal(evaluated, result.Faithfulness, 3);
                Assert.Empty(result.Steps);
            }
        }
    }

    [Fact]
    public void EntriesOutsideThePrunableSetStayAndTheOrderIsAcdcs()
    {
        var (model, parts) = Reverse.Value;
        var graph = ComputationGraph.Factorized(model.Config);
        var result = CircuitPruning.Run(new PruningRequest
        {
            Model = model, Task = KnownTasks.TracrReverse, Parts = parts, Start = SymbolicCircuit.WholeModel(graph), Tau = 0.5,
            Prunable = e => e.Destination != "Resid End",
        });
        var intoOutput = graph.EdgesInto(graph.Destination("Resid End")).ToArray();
        Assert.All(intoOutput, e => Assert.Contains(result.Circuit.Edges, k => k.Name == e.Name));
        Assert.DoesNotContain(result.Steps, s => s.Entry.Destination == "Resid End");
        // Output side first: destination layers never increase along the visit.
        var layers = result.Steps.Select(s => graph.Edge(s.Entry.Source, s.Entry.Destination).Destination.Layer).ToList();
        Assert.Equal(layers.OrderByDescending(l => l), layers);
    }

    [Fact]
    public void AtPositionsSplitsEveryAllPositionsEntry()
    {
        var circuit = new SymbolicCircuit("c", "", GraphView.Factorized, true, new[]
        {
            new SymbolicEdge("Resid Start", "A0.0.K", null), new SymbolicEdge("A0.0", "Resid End", "end"),
        });
        var split = CircuitPruning.AtPositions(circuit, new[] { "S1", "end" });
        Assert.Equal(new[] { "Resid Start->A0.0.K @ S1", "Resid Start->A0.0.K @ end", "A0.0->Resid End @ end" }, split.Edges.Select(e => e.ToString()).ToArray());
        Assert.Throws<ArgumentException>(() => CircuitPruning.Run(new PruningRequest
        {
            Model = Reverse.Value.Model, Task = KnownTasks.TracrReverse, Parts = Reverse.Value.Parts, Start = circuit, Tau = -1,
        }));
    }
}
