using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Tasks;

namespace Workbook.Curves;

/// <summary>
/// What to draw faithfulness curves for: an edge scoring (a discovery result or a scores file), the prompts, the
/// methodologies (each ablating the circuit's complement) and the grid of edge counts.
/// </summary>
public sealed record CurveRequest
{
    public required HookedTransformer Model { get; init; }
    public required TaskDefinition Task { get; init; }
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    public required EdgeScores Scores { get; init; }
    public required IReadOnlyList<Methodology> Methodologies { get; init; }
    /// <summary>Null: logit difference for token answers, MSE for real-valued targets.</summary>
    public MetricKind? Metric { get; init; }
    /// <summary>Edge counts to evaluate (null: <see cref="CurveGrid.LogSpaced"/> with <see cref="Points"/> points).</summary>
    public IReadOnlyList<int>? Grid { get; init; }
    public int Points { get; init; } = 12;
    public int BatchSize { get; init; } = 50;
    /// <summary>The curve's circuits evaluated per forward pass (<see cref="CircuitStack"/>); 1 is the one-circuit path; null: from the memory estimate.</summary>
    public int? CircuitsPerForward { get; init; }
    public IProgress<WorkProgress>? Progress { get; init; }
}

/// <summary>One point of a curve: the top-<see cref="Edges"/> circuit (ties may make <see cref="Kept"/> larger).</summary>
public sealed record CurvePoint(int Edges, int Kept, double Fraction, double MeanMetric, double Faithfulness);

/// <summary>
/// The faithfulness of the top-k circuits of one scoring under one methodology, with MIB's CPR and CMD
/// (<see cref="CurveArea"/>). Faithfulness f(C) = (m(C) − m(∅)) / (m(M) − m(∅)), MIB's normalisation, where m is the
/// metric's mean over every prompt, M the unpatched model and ∅ the empty circuit (every edge ablated) under the same
/// methodology.
/// </summary>
public sealed record FaithfulnessCurve
{
    public required Methodology Methodology { get; init; }
    public required MetricKind Metric { get; init; }
    public required int TotalEdges { get; init; }
    /// <summary>m(M): the unpatched model's mean.</summary>
    public required double FullModel { get; init; }
    /// <summary>m(∅): the empty circuit's mean under this methodology.</summary>
    public required double EmptyCircuit { get; init; }
    public required IReadOnlyList<CurvePoint> Points { get; init; }
    public required double Cpr { get; init; }
    public required double Cmd { get; init; }
    public string Label => Methodology.Label;
}

/// <summary>
/// Faithfulness curves: for each edge count k of the grid, the circuit of exactly the k most important edges (by |score|,
/// <see cref="TopExactly"/>), evaluated under every methodology by the ordinary <see cref="Evaluator"/>. A node
/// methodology keeps the heads that are the source of a kept edge and, as the paper's node circuits, every non-head node
/// (<see cref="NodeCircuit"/>); the x axis stays the edge count. MIB ranks by signed scores for CPR and by |score| for
/// CMD; here both use |score|.
/// </summary>
public static class FaithfulnessCurves
{
    public static IReadOnlyList<FaithfulnessCurve> Compute(CurveRequest request)
    {
        var scores = request.Scores;
        var model = request.Model;
        if (request.Methodologies.Count == 0) throw new ArgumentException("Give at least one methodology.");
        foreach (var m in request.Methodologies)
            if (m.Ablate != AblatedSet.Complement)
                throw new ArgumentException($"A faithfulness curve keeps the circuit and ablates the rest; methodology {m.Label} ablates the circuit itself.");
        var edgeGraph = scores.Graph;
        if (edgeGraph.Config.NLayers != model.Config.NLayers || edgeGraph.Config.NHeads != model.Config.NHeads)
            throw new ArgumentException($"The scores are for '{edgeGraph.Config.Name}', which does not match model '{model.Config.Name}'.");
        var grid = request.Grid ?? CurveGrid.LogSpaced(edgeGraph.EdgeCount, request.Points);
        if (grid.Count < 2) throw new ArgumentException("A curve needs at least two edge counts.");
        foreach (int k in grid)
            if (k < 1 || k > edgeGraph.EdgeCount) throw new ArgumentException($"Edge count {k} is outside 1..{edgeGraph.EdgeCount} (the scored graph's edges).");
        if (grid.Distinct().Count() != grid.Count || !grid.SequenceEqual(grid.OrderBy(k => k)))
            throw new ArgumentException("The edge counts of a curve must be distinct and ascending.");
        var metric = request.Metric ?? (request.Parts[0].HasTokenAnswers ? MetricKind.LogitDiff : MetricKind.Mse);
        // Edge methodologies evaluate on the scored graph's granularity.
        var granularity = edgeGraph.SeparateQkv ? Granularity.QkvSeparate : Granularity.Heads;
        var methodologies = request.Methodologies.Select(m => m.Component == Component.Edge ? m with { Granularity = granularity } : m).ToList();
        var residual = ComputationGraph.Residual(model.Config);

        CircuitStack.CheckRequested(request.CircuitsPerForward);

        var sizes = new List<int> { 0 };
        sizes.AddRange(grid);
        var means = new double[methodologies.Count, sizes.Count];
        var edgeCircuits = sizes.Select(k => TopExactly(scores, k)).ToArray();
        var kept = edgeCircuits.Select(c => c.Count).ToArray();
        var edgeSymbolic = sizes.Select((k, i) => SymbolicCircuit.FromCircuit($"top-{k}", edgeCircuits[i])).ToArray();
        var nodeSymbolic = sizes.Select((k, i) => SymbolicCircuit.FromCircuit($"top-{k}-nodes", NodeCircuit(edgeCircuits[i], residual))).ToArray();
        double? fullModel = null;
        // Every circuit size of a methodology in one sweep: clean runs, means and patch values once per batch, the
        // circuits stacked several per forward pass. Progress: circuits (methodology × size) done, and the sweep's own record within.
        var tracker = new ProgressTracker(AmbientProgress.Or(request.Progress), "faithfulness curve", (long)methodologies.Count * sizes.Count, "circuits");
        tracker.Start();
        using var cache = new EvaluationCache(model);
        for (int m = 0; m < methodologies.Count; m++)
        {
            tracker.Working($"{methodologies[m].Label}: {sizes.Count} circuit sizes");
            var result = CircuitSweep.Run(new SweepRequest
            {
                Model = model, Task = request.Task, Parts = request.Parts, Methodology = methodologies[m], Metrics = new[] { metric },
                Circuits = methodologies[m].Component == Component.Node ? nodeSymbolic : edgeSymbolic,
                BatchSize = request.BatchSize, CircuitsPerForward = request.CircuitsPerForward, Cache = cache, Progress = request.Progress,
            });
            fullModel ??= result.FullModel.Average(r => r.Value);
            for (int i = 0; i < sizes.Count; i++) means[m, i] = result.Rows[i].Average(r => r.Value);
            tracker.Advance(sizes.Count, methodologies[m].Label);
        }

        var curves = new List<FaithfulnessCurve>();
        for (int m = 0; m < methodologies.Count; m++)
        {
            double empty = means[m, 0], full = fullModel!.Value;
            if (full == empty)
                throw new ArgumentException($"Under {methodologies[m].Label} the empty circuit scores the same {metric.Label} as the model ({full:G6}): faithfulness is undefined.");
            var points = new List<CurvePoint>();
            for (int i = 1; i < sizes.Count; i++)
                points.Add(new CurvePoint(sizes[i], kept[i], (double)sizes[i] / edgeGraph.EdgeCount, means[m, i], (means[m, i] - empty) / (full - empty)));
            var (cpr, cmd) = CurveArea.Areas(points.Select(p => p.Fraction).ToArray(), points.Select(p => p.Faithfulness).ToArray());
            curves.Add(new FaithfulnessCurve
            {
                Methodology = methodologies[m], Metric = metric, TotalEdges = edgeGraph.EdgeCount, FullModel = full, EmptyCircuit = empty,
                Points = points, Cpr = cpr, Cmd = cmd,
            });
        }
        return curves;
    }

    /// <summary>
    /// The node circuit of an edge circuit, by the paper's node convention (spec 0.3, as <see cref="OfficialCircuits.NodeCircuit"/>):
    /// only heads are ablated, so every non-head edge of the residual graph is kept, with every head that is the source of one
    /// of the circuit's edges.
    /// </summary>
    public static Circuit NodeCircuit(Circuit edges, ComputationGraph residual)
    {
        var heads = edges.DistinctEdges().Where(e => e.Source.Kind == NodeKind.Head).Select(e => e.Source.Name).ToHashSet(StringComparer.Ordinal);
        return Circuit.From(residual, residual.Edges.Where(e => e.Source.Kind != NodeKind.Head || heads.Contains(e.Source.Name)).Select(e => new CircuitEdge(e, null)));
    }

    /// <summary>
    /// The <paramref name="count"/> most important edges, exactly (ties broken by graph order, as <see cref="EdgeScores.Ranked"/>),
    /// like MIB's top-n: <see cref="EdgeScores.Top"/> keeps every tied edge, which on sparse scorings (many exact zeros)
    /// jumps from a few edges to the whole graph.
    /// </summary>
    public static Circuit TopExactly(EdgeScores scores, int count) =>
        Circuit.From(scores.Graph, scores.Ranked().Take(count).Select(e => new CircuitEdge(e, null)));

    /// <summary>
    /// The methodologies of the paper's robustness question asked of the curve: node or edge × resample or mean (over the
    /// corrupt prompts) × specific or all positions; ablating the complement of the circuit, on the clean prompts.
    /// Circuits built from edge scores name no positions, so "specific" equals "all" for them and is left out unless
    /// <paramref name="positional"/>.
    /// </summary>
    public static IReadOnlyList<Methodology> PaperGrid(bool positional = false) =>
        (from component in new[] { Component.Edge, Component.Node }
         from value in new[] { AblationValue.Resample, AblationValue.Mean(MeanOver.Corrupt) }
         from positions in positional ? new[] { TokenPositions.Specific, TokenPositions.All } : new[] { TokenPositions.All }
         select new Methodology { Component = component, Value = value, Positions = positions }).ToList();
}
