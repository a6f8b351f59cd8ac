using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Evaluation;

/// <summary>Many circuits evaluated under one methodology on the same prompts (a curve over circuit sizes, a threshold sweep).</summary>
public sealed record SweepRequest
{
    public required HookedTransformer Model { get; init; }
    public required TaskDefinition Task { get; init; }
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    /// <summary>The circuits, all of the methodology's component (node or edge); token positions are used when the methodology is specific.</summary>
    public required IReadOnlyList<SymbolicCircuit> Circuits { get; init; }
    public required Methodology Methodology { get; init; }
    public required IReadOnlyList<MetricKind> Metrics { get; init; }
    public int BatchSize { get; init; } = 50;
    /// <summary>Circuits per forward pass (<see cref="CircuitStack"/>); 1 is the one-circuit path; null: from the activation-memory estimate.</summary>
    public int? CircuitsPerForward { get; init; }
    /// <summary>A cache shared with other evaluations of the same model and prompts (the caller disposes it); null: one for this call.</summary>
    public EvaluationCache? Cache { get; init; }
    public IProgress<WorkProgress>? Progress { get; init; }
}

/// <summary>Per circuit (in request order) its rows, exactly the rows <see cref="Evaluator"/> gives for it; and the unpatched model's rows.</summary>
public sealed record SweepResult(IReadOnlyList<IReadOnlyList<EvaluationRow>> Rows, IReadOnlyList<BaselineRow> FullModel);

/// <summary>
/// Evaluates many circuits under one methodology: per batch the clean reference, the dataset means and the patch values
/// are computed once and shared by every circuit, and the circuits run stacked several per forward pass
/// (<see cref="CircuitStack"/>). Each circuit's rows are those of <see cref="Evaluator.Run"/> for that circuit alone.
/// </summary>
public static class CircuitSweep
{
    public static SweepResult Run(SweepRequest request)
    {
        var model = request.Model;
        var methodology = request.Methodology;
        if (request.Circuits.Count == 0) throw new ArgumentException("Give at least one circuit to evaluate.");
        if (request.Parts.Count == 0) throw new ArgumentException("There are no prompts to evaluate.");
        if (request.Metrics.Count == 0) throw new ArgumentException("Give at least one metric.");
        if (request.BatchSize < 1) throw new ArgumentException($"The batch size must be at least 1, got {request.BatchSize}.");
        CircuitStack.CheckRequested(request.CircuitsPerForward);
        foreach (var metric in request.Metrics)
            if (metric.Needs.HasFlag(MetricNeeds.TokenAnswers) && !request.Parts[0].HasTokenAnswers)
                throw new ArgumentException($"Metric '{metric.Label}' needs token answers, but task '{request.Task.Name}' has real-valued targets; use mse or kl.");
        var graph = methodology.View == GraphView.Residual ? ComputationGraph.Residual(model.Config) : ComputationGraph.Factorized(model.Config, methodology.SeparateQkv);
        for (int i = 0; i < request.Circuits.Count; i++)
        {
            var c = request.Circuits[i];
            if (c.Component != methodology.Component)
                throw new ArgumentException($"Circuit {i} ('{c.Name}') is a{(c.Component == Component.Node ? " node" : "n edge")} circuit, but methodology {methodology.Label} ablates {methodology.Component.ToString().ToLowerInvariant()}s.");
            c.CheckGraph(graph);
        }
        foreach (var part in request.Parts)
        {
            Evaluator.CheckPromptLengths(part);
            Evaluator.CheckAnswerIds(part, model.Config.OutputVocab);
            methodology.Value.CheckPrompts(part.Name, part.Count, request.BatchSize);
        }

        var cache = request.Cache ?? new EvaluationCache(model);
        var rows = request.Circuits.Select(_ => new List<EvaluationRow>()).ToArray();
        var baseline = new List<BaselineRow>();
        var tracker = new ProgressTracker(AmbientProgress.Or(request.Progress), "circuit sweep", request.Parts.Sum(p => (long)p.Count) * request.Circuits.Count, "circuit-prompts");
        tracker.Start();
        try
        {
            foreach (var part in request.Parts)
            {
                EvaluatePart(request, part, graph, cache, tracker, rows, baseline);
                if (request.Cache is null) cache.Forget(part);
            }
        }
        finally
        {
            if (request.Cache is null) cache.Dispose();
        }
        tracker.Complete();
        return new SweepResult(rows, baseline);
    }

    static void EvaluatePart(SweepRequest request, TokenizedDataset part, ComputationGraph graph, EvaluationCache cache, ProgressTracker tracker,
        List<EvaluationRow>[] rows, List<BaselineRow> baseline)
    {
        var model = request.Model;
        var methodology = request.Methodology;
        var batches = Evaluator.Batches(part, request.BatchSize, model.Device);
        var owned = new List<IDisposable>();
        try
        {
            tracker.Working($"clean runs · {part.Name}");
            var reference = batches.Select(b => (Tensor?)cache.CleanOutputs(new CleanOutputsKey(new BatchKey(part, b.Start, b.Count), request.Task.Read), b.Pair)).ToList();
            if (!cache.Reuse) owned.AddRange(reference!);
            for (int b = 0; b < batches.Count; b++)
                PatchingGuards.EnsureFinite(reference[b]!, () => $"The unpatched model on '{part.Name}', batch {b + 1} of {batches.Count}", batches[b].Start);
            double? meanModelLogitDiff = request.Metrics.Any(m => m.Needs.HasFlag(MetricNeeds.ModelMeanLogitDiff)) ? Evaluator.MeanLogitDiff(reference, part, batches) : null;
            for (int b = 0; b < batches.Count; b++)
                Evaluator.AddBaselineRows(baseline, part, batches[b], reference[b]!, request.Metrics, meanModelLogitDiff);
            var circuits = request.Circuits.Select(c => c.Resolve(graph, part.Positions, methodology.Positions)).ToArray();
            MeanReference? means = null;
            if (methodology.Value.Needs.HasFlag(AblationNeeds.DatasetMeans))
            {
                tracker.Working($"dataset means · {part.Name}");
                means = cache.Means(part, request.BatchSize, new[] { graph }, batches.Select(b => b.Pair).ToList(), MeanAblation.SidesFor(new[] { methodology.Value }))[graph.View];
                if (!cache.Reuse) owned.Add(means);
            }
            var recorded = methodology.Value.ComputedFromPairedRecording ? new[] { graph } : Array.Empty<ComputationGraph>();
            int prefix = methodology.NeverPatchedPrefix ?? part.SharedPrefix;
            for (int b = 0; b < batches.Count; b++)
            {
                var batch = batches[b];
                using var scope = NewDisposeScope();
                var values = cache.Values(new BatchKey(part, batch.Start, batch.Count), batch.Pair, graph, methodology, recorded, means, prefix);
                var masks = new PatchMasks[circuits.Length];
                try
                {
                    for (int c = 0; c < circuits.Length; c++)
                    {
                        masks[c] = PatchMasks.ForCircuit(circuits[c], methodology, batch.Pair.SeqLen, prefix, model.Device);
                        PatchingGuards.EnsurePatchesSomething(masks[c], circuits[c], methodology, batch.Pair.SeqLen, prefix);
                    }
                    int perForward = CircuitStack.CircuitsPerForward(model.Config, batch.Count, batch.Pair.SeqLen, circuits.Length, request.CircuitsPerForward, device: model.Device);
                    CircuitStack.ForEach(model, masks, values, batch.Pair.Input(methodology.Direction), perForward, (c, logits) =>
                    {
                        var outputs = FaithfulnessMetrics.ReadOutputs(logits, request.Task.Read);
                        PatchingGuards.EnsureFinite(outputs, () => $"Circuit {request.Circuits[c].Name} under {methodology.Label} on '{part.Name}', batch {b + 1} of {batches.Count}", batch.Start);
                        Evaluator.AddRows(rows[c], request.Task.Name, part, batch, methodology, request.Metrics, outputs, reference[b]!, meanModelLogitDiff);
                        tracker.Advance(batch.Count, $"{methodology.Label} · {part.Name} · batch {b + 1} of {batches.Count}");
                    }, lastPositionOnly: request.Task.Read == ReadPositions.Last);
                }
                finally
                {
                    foreach (var m in masks) m?.Dispose();
                }
                cache.ForgetRecordings(new BatchKey(part, batch.Start, batch.Count));
            }
        }
        finally
        {
            foreach (var o in owned) o.Dispose();
            foreach (var b in batches) b.Dispose();
        }
    }
}
