using Workbook.Evaluation;
using Workbook.Discovery;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Progress;

namespace Workbook.Curves;

/// <summary>What a robustness card is computed from.</summary>
public sealed record CardRequest
{
    public required HookedTransformer Model { get; init; }
    public required TaskDefinition Task { get; init; }
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    public required CircuitChoice Circuit { get; init; }
    /// <summary>Scores for the curves (null: the circuit's own ranking, <see cref="RobustnessCard.CircuitRanking"/>).</summary>
    public EdgeScores? Scores { get; init; }
    public int Points { get; init; } = 10;
    public int BatchSize { get; init; } = 50;
    public int Seed { get; init; }
    public IProgress<WorkProgress>? Progress { get; init; }
}

/// <summary>Computes a <see cref="RobustnessCard"/>: the robustness report over the paper's grid, then the curves.</summary>
public static class RobustnessCards
{
    public static RobustnessCard Compute(CardRequest request)
    {
        var model = request.Model;
        var task = request.Task;
        var choice = request.Circuit;
        var methodologies = RobustnessReport.Methodologies(new ReportGrid(), choice, task.PaperMean);
        var metric = request.Parts[0].HasTokenAnswers ? MetricKind.LogitDiffRecovered : MetricKind.Parse(task.PaperMetric);
        var metrics = metric == MetricKind.LogitDiffRecovered ? new[] { metric, MetricKind.LogitDiffRecoveredOfMeans } : new[] { metric };
        var evaluation = Evaluator.RunWithBaseline(new EvaluationRequest
        {
            Model = model, Task = task, Parts = request.Parts, Circuit = choice, Methodologies = methodologies, Metrics = metrics, BatchSize = request.BatchSize,
            Progress = request.Progress,
        });
        var report = RobustnessReport.Build(task.Name, choice.Name, model.Config.Name, metric, evaluation, methodologies, request.Seed);

        IReadOnlyList<FaithfulnessCurve> curves = Array.Empty<FaithfulnessCurve>();
        int circuitEdges, graphEdges;
        string ranking;
        if (choice.Components.Contains(Component.Edge))
        {
            var graph = ComputationGraph.Factorized(model.Config, choice.EdgeGranularity == Granularity.QkvSeparate);
            var circuit = choice.For(Component.Edge).Resolve(graph, request.Parts[0].Positions, TokenPositions.All).WithoutPositions();
            (circuitEdges, graphEdges) = (circuit.Count, graph.EdgeCount);
            var scores = request.Scores ?? RobustnessCard.CircuitRanking(circuit, model.Config.Name, task.Name);
            ranking = request.Scores is null ? "the circuit's edges first (in graph order), then the rest" : $"{scores.Info.Algorithm.Name()} scores";
            var grid = CurveGrid.LogSpaced(scores.Graph.EdgeCount, request.Points).Append(Math.Max(1, circuit.Count)).Distinct().OrderBy(k => k).ToArray();
            curves = FaithfulnessCurves.Compute(new CurveRequest
            {
                Model = model, Task = task, Parts = request.Parts, Scores = scores, Methodologies = FaithfulnessCurves.PaperGrid(), Grid = grid,
                BatchSize = request.BatchSize, Progress = request.Progress,
            });
        }
        else
        {
            var residual = ComputationGraph.Residual(model.Config);
            var nodes = choice.For(Component.Node).Resolve(residual, request.Parts[0].Positions, TokenPositions.All).WithoutPositions();
            (circuitEdges, graphEdges, ranking) = (nodes.Count, residual.EdgeCount, "none (node circuit)");
        }
        return RobustnessCard.Build(report, circuitEdges, graphEdges, curves, ranking);
    }
}
