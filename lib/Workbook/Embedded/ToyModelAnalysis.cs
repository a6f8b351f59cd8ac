using System.Text.Json;
using System.Text.Json.Nodes;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>The node and edge circuits a search found, with the searches that found them.</summary>
public sealed record ToyCircuits(SymbolicCircuit Nodes, SymbolicCircuit Edges, PruningResult? NodeSearch, PruningResult EdgeSearch);

/// <summary>
/// The analysis every toy model's build runs after training: accuracy on held-out prompts (a plain forward pass, no
/// patching), the circuit search (<see cref="CircuitPruning"/>: heads at the task's positions first, then the edges
/// among them), and the methodology grid of the paper's figures on the evaluation prompts.
/// </summary>
public static class ToyModelAnalysis
{
    /// <summary>Accuracy, answer-vs-candidates, logit difference and answer probability at the last position of every prompt.</summary>
    public static ToyTaskScore Score(HookedTransformer model, IReadOnlyList<TokenizedDataset> parts)
    {
        int prompts = 0, top = 0, beats = 0;
        double diffs = 0;
        var probabilities = new List<double>();
        using var _ = no_grad();
        foreach (var part in parts)
            for (int start = 0; start < part.Count; start += 100)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(100, part.Count - start);
                var tokens = tensor(part.Clean.Skip(start).Take(n).SelectMany(p => p).Select(x => (long)x).ToArray()).view(n, part.SeqLen);
                var logits = model.Forward(tokens)[.., -1].to(ScalarType.Float64);               // [n, V]
                var values = logits.contiguous().data<double>().ToArray();
                var probs = logits.softmax(-1).contiguous().data<double>().ToArray();
                int V = (int)logits.shape[1];
                for (int i = 0; i < n; i++)
                {
                    int answer = part.AnswerIds![start + i][0];
                    double best = part.WrongAnswerIds![start + i].Max(w => values[i * V + w]);
                    int argmax = Enumerable.Range(0, V).MaxBy(v => values[i * V + v]);
                    top += argmax == answer ? 1 : 0;
                    beats += values[i * V + answer] >= best ? 1 : 0;
                    diffs += values[i * V + answer] - best;
                    probabilities.Add(probs[i * V + answer]);
                    prompts++;
                }
            }
        probabilities.Sort();
        return new ToyTaskScore(prompts, (double)top / prompts, (double)beats / prompts, diffs / prompts, Statistics.Median(probabilities.ToArray()));
    }

    /// <summary>
    /// The circuit search of the toy models. Nodes: every head at every position of <paramref name="positions"/>, then
    /// <see cref="CircuitPruning"/> removes head-positions (τ of the node search, in points). Edges: the edge circuit those head-positions induce
    /// (<see cref="OfficialCircuits.InducedEdgeCircuit"/>), with every edge at each of <paramref name="positions"/>, pruned the
    /// same way. Both searches ablate with resample values on the given prompts (use prompts the circuits are not evaluated on).
    /// </summary>
    public static ToyCircuits Derive(HookedTransformer model, TaskDefinition task, IReadOnlyList<TokenizedDataset> parts, IReadOnlyList<string> positions,
        ToySearchThresholds tau, string family, string howFound, IProgress<Progress.WorkProgress>? progress = null)
    {
        var config = model.Config;
        var heads = Enumerable.Range(0, config.NLayers).SelectMany(l => Enumerable.Range(0, config.NHeads).Select(h => $"A{l}.{h}")).ToList();
        var nodeStart = OfficialCircuits.NodeCircuit($"{family}-nodes", "", config, heads.SelectMany(h => positions.Select(p => (h, (string?)p))));
        var nodeSearch = CircuitPruning.Run(new PruningRequest
        {
            Model = model, Task = task, Parts = parts, Start = nodeStart, Tau = tau.NodeTau, Progress = progress, BatchSize = OneBatch(parts),
            Prunable = e => e.Source.StartsWith('A'),
        });
        var kept = nodeSearch.Circuit.Edges.Where(e => e.Source.StartsWith('A')).Select(e => (e.Source, e.Position)).ToList();
        var nodes = new SymbolicCircuit($"{family}-nodes",
            $"{family} node circuit: {Describe(kept)} ({howFound}; head-positions kept by the pruning search, τ = {tau.NodeTau:G3} points)",
            GraphView.Residual, false, nodeSearch.Circuit.Edges);
        return DeriveEdges(model, task, parts, positions, tau.EdgeTau, family, howFound, nodes, kept, nodeSearch, progress);
    }

    /// <summary>
    /// The edge half of <see cref="Derive"/> for a given node circuit: the edges its head-positions induce, every edge at
    /// each of <paramref name="positions"/>, pruned by <see cref="CircuitPruning"/>.
    /// </summary>
    public static ToyCircuits DeriveEdges(HookedTransformer model, TaskDefinition task, IReadOnlyList<TokenizedDataset> parts, IReadOnlyList<string> positions,
        double tau, string family, string howFound, SymbolicCircuit nodes, IReadOnlyList<(string Head, string? Position)> kept, PruningResult? nodeSearch,
        IProgress<Progress.WorkProgress>? progress = null)
    {
        var induced = OfficialCircuits.InducedEdgeCircuit($"{family}-edges", "", model.Config, kept);
        var edgeSearch = CircuitPruning.Run(new PruningRequest
        {
            Model = model, Task = task, Parts = parts, Start = CircuitPruning.AtPositions(induced, positions), Tau = tau, Progress = progress, BatchSize = OneBatch(parts),
        });
        var edges = new SymbolicCircuit($"{family}-edges",
            $"{family} edge circuit: {edgeSearch.Circuit.Edges.Count} edge-positions, {edgeSearch.Circuit.DistinctEdgeCount} edges, pruned from the edges among the node " +
            $"circuit's heads, embeddings and output ({howFound}; τ = {tau:G3} points)",
            GraphView.Factorized, true, edgeSearch.Circuit.Edges);
        return new ToyCircuits(nodes, edges, nodeSearch, edgeSearch);
    }

    /// <summary>Each part in one forward pass: the tiny models' patched forward costs little more for 240 prompts than for 50.</summary>
    static int OneBatch(IReadOnlyList<TokenizedDataset> parts) => parts.Max(p => p.Count);

    static string Describe(IEnumerable<(string Head, string? Position)> kept) =>
        string.Join(", ", kept.GroupBy(k => k.Head).Select(g => $"{g.Key}@{string.Join("/", g.Select(k => k.Position ?? "all"))}"));

    /// <summary>
    /// The paper's grid (Figures 3 and 9): node and edge circuits × resample and the task's mean × specific and all
    /// positions, circuit kept; per-prompt logit difference recovered with its spread, and how far each choice moves the median.
    /// </summary>
    public static (IReadOnlyList<ToyGridEntry> Entries, IReadOnlyList<FactorEffect> Factors) Grid(HookedTransformer model, TaskDefinition task,
        IReadOnlyList<TokenizedDataset> parts, CircuitChoice circuits, string modelName)
    {
        var grid = new ReportGrid { Values = new[] { AblationValue.Resample, AblationValue.Mean(task.PaperMean) }, Sets = new[] { AblatedSet.Complement } };
        var methodologies = RobustnessReport.Methodologies(grid, circuits, task.PaperMean);
        var result = Evaluator.RunWithBaseline(new EvaluationRequest
        {
            Model = model, Task = task, Parts = parts, Circuit = circuits, Methodologies = methodologies,
            Metrics = new[] { MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans }, BatchSize = task.DefaultBatchSize,
        });
        var report = RobustnessReport.Build(task.Name, circuits.Name, modelName, MetricKind.LogitDiffRecovered, result, methodologies);
        var entries = methodologies.Select(m => report.Faithfulness.Single(e => e.Methodology == m))
            .Select(e => new ToyGridEntry(e.Label, Round(e.Values.Median), Round(e.Values.Q1), Round(e.Values.Q3), Round(e.RatioOfMeans ?? double.NaN))).ToList();
        var factors = report.Sensitivity.Factors.Select(f => f with { MeanShift = Round(f.MeanShift), MaxShift = Round(f.MaxShift) }).ToList();
        return (entries, factors);
    }

    static double Round(double x) => Math.Round(x, 2);

    /// <summary>The options record of a trainer as JSON (stored in the report).</summary>
    public static JsonObject OptionsJson<T>(T options) => (JsonObject)JsonSerializer.SerializeToNode(options, ToyIoiBuild.Json)!;
}

/// <summary>The files of a toy model's folder and its circuit files (<c>circuit-nodes.json</c>, <c>circuit-edges.json</c>).</summary>
public static class ToyCircuitFiles
{
    public static readonly string[] ModelFiles =
        { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "circuit-nodes.json", "circuit-edges.json", "evaluation.json", "README.md" };

    public static string FileName(Component component) => component == Component.Node ? "circuit-nodes.json" : "circuit-edges.json";

    public static SymbolicCircuit Read(EmbeddedCheckpoint checkpoint, Component component)
    {
        string file = FileName(component);
        var circuit = SymbolicCircuitJson.Read(ToyBuildLog.ReadSmallFile(Path.Combine(checkpoint.Folder, file)), $"{checkpoint.Alias}-{(component == Component.Node ? "nodes" : "edges")}", file);
        return circuit;
    }
}
