using System.Globalization;
using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Discovery;

/// <summary>What to prune: a model, a task's prompts, and a token-specific circuit to start from.</summary>
public sealed record PruningRequest
{
    public required HookedTransformer Model { get; init; }
    public required TaskDefinition Task { get; init; }
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    /// <summary>The circuit to start from (node or edge), one entry per edge and position the search may remove.</summary>
    public required SymbolicCircuit Start { get; init; }
    /// <summary>Which entries the search may remove (null: every entry).</summary>
    public Func<SymbolicEdge, bool>? Prunable { get; init; }
    /// <summary>What replaces the ablated complement while searching (resample from the corrupt prompts by default, as ACDC).</summary>
    public AblationValue Value { get; init; } = AblationValue.Resample;
    /// <summary>
    /// Threshold in points of percent: an entry stays removed when the circuit's distance from the full model,
    /// |100 − logit difference recovered (ratio of means)|, grows by less than this.
    /// </summary>
    public double Tau { get; init; } = 1.0;
    public int? BatchSize { get; init; }
    public IProgress<Progress.WorkProgress>? Progress { get; init; }
}

/// <summary>One visited entry: the circuit's faithfulness (logit difference recovered, ratio of means) with and without it.</summary>
public sealed record PruningStep(SymbolicEdge Entry, double With, double Without, bool Removed);

/// <summary>The pruned circuit, the faithfulness of the start and the result under the search's methodology, and every step.</summary>
public sealed record PruningResult(SymbolicCircuit Circuit, Methodology Methodology, double StartFaithfulness, double Faithfulness, IReadOnlyList<PruningStep> Steps);

/// <summary>
/// ACDC's greedy search (Conmy et al. 2023) over the entries of a token-specific circuit: each entry is an edge at one
/// position (for node circuits, a head's output at one position). Entries are visited in ACDC's order (destination layer
/// descending, then destination, then source latest first; positions in the order listed); each is ablated with the
/// rest of the complement and stays removed when the circuit's distance from the full model grows by less than τ, else
/// it is restored. Faithfulness is measured as the robustness report measures it (token-specific positions, the
/// complement ablated, the same masks, patch values and metric code as <see cref="Evaluator"/>), with logit difference
/// recovered as a ratio of means, so the circuit found is checked by the same ablation it will be evaluated with. Where <see cref="Acdc"/> removes edges at
/// every position at once, this search decides position by position.
/// </summary>
public static class CircuitPruning
{
    public static PruningResult Run(PruningRequest request)
    {
        if (request.Tau < 0 || !double.IsFinite(request.Tau)) throw new ArgumentException($"τ must be a finite non-negative number of points, got {request.Tau}.");
        var start = request.Start;
        if (start.Edges.Count == 0) throw new ArgumentException($"Circuit '{start.Name}' has no entries to prune.");
        if (!request.Parts[0].HasTokenAnswers) throw new ArgumentException($"Task '{request.Task.Name}' has no answer tokens; pruning measures logit difference recovered.");
        var graph = start.View == GraphView.Residual ? ComputationGraph.Residual(request.Model.Config) : ComputationGraph.Factorized(request.Model.Config, start.SeparateQkv);
        start.CheckGraph(graph);
        var methodology = new Methodology
        {
            Component = start.Component, Granularity = start.SeparateQkv || start.View == GraphView.Residual ? Granularity.QkvSeparate : Granularity.Heads,
            Value = request.Value, Positions = TokenPositions.Specific, Ablate = AblatedSet.Complement,
        };

        using var prepared = Prepared.Create(request, graph, methodology);
        double Faithfulness(IEnumerable<SymbolicEdge> kept) =>
            prepared.RatioOfMeans(new SymbolicCircuit(start.Name, start.Description, start.View, start.SeparateQkv, kept));

        var kept = start.Edges.ToList();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var order = VisitingOrder(start, graph);
        double startValue = Faithfulness(kept), current = startValue;
        var steps = new List<PruningStep>();
        int visited = 0, candidates = order.Count(e => request.Prunable?.Invoke(e) ?? true);
        foreach (var entry in order)
        {
            if (!(request.Prunable?.Invoke(entry) ?? true)) continue;
            visited++;
            int index = kept.IndexOf(entry);
            kept.RemoveAt(index);
            double without = kept.Count == 0 ? double.NaN : Faithfulness(kept);
            bool remove = double.IsFinite(without) && Math.Abs(100 - without) - Math.Abs(100 - current) < request.Tau;
            steps.Add(new PruningStep(entry, current, without, remove));
            if (remove) current = without;
            else kept.Insert(index, entry);
            request.Progress?.Report(new Progress.WorkProgress("pruning",
                $"{entry}: {F(steps[^1].With)} % → {F(without)} % without it: {(remove ? "removed" : "kept")} ({kept.Count} entries left)", visited, candidates, "entries", clock.Elapsed, null));
        }
        var result = new SymbolicCircuit(start.Name, start.Description, start.View, start.SeparateQkv, kept);
        return new PruningResult(result, methodology, startValue, current, steps);
    }

    /// <summary>ACDC's order: destination layer descending, destination, source latest first; entries of one edge in listed order.</summary>
    static IReadOnlyList<SymbolicEdge> VisitingOrder(SymbolicCircuit circuit, ComputationGraph graph)
    {
        var edges = circuit.Edges.Select((e, i) => (Entry: e, Index: i, Edge: graph.Edge(e.Source, e.Destination))).ToList();
        return edges.OrderByDescending(x => x.Edge.Destination.Layer).ThenBy(x => x.Edge.Destination.Index).ThenByDescending(x => x.Edge.Source.Index)
            .ThenBy(x => x.Index).Select(x => x.Entry).ToList();
    }

    /// <summary>
    /// <paramref name="circuit"/> with every entry that holds at every position (null) replaced by one entry per
    /// position in <paramref name="positions"/>, so that a search can decide position by position.
    /// </summary>
    public static SymbolicCircuit AtPositions(SymbolicCircuit circuit, IReadOnlyList<string> positions, string? name = null) =>
        new(name ?? circuit.Name, circuit.Description, circuit.View, circuit.SeparateQkv, circuit.Edges.SelectMany(e =>
            e.Position is null ? positions.Select(p => e with { Position = p }) : new[] { e }).Distinct());

    static string F(double x) => x.ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>
    /// What every step shares, computed once: per part its batches, the unpatched model's outputs, the patch values and
    /// the model's mean logit difference. A step then runs one patched forward pass per batch and reads the metric as
    /// <see cref="Evaluator"/> does (the tests check the two agree).
    /// </summary>
    sealed class Prepared : IDisposable
    {
        readonly List<(TokenizedDataset Part, List<Evaluator.Batch> Batches, List<Tensor> Reference, List<PatchValues> Values, MeanReference? Means, double MeanLogitDiff)> _parts = new();
        readonly HookedTransformer _model;
        readonly ComputationGraph _graph;
        readonly Methodology _methodology;
        readonly ReadPositions _read;

        Prepared(HookedTransformer model, ComputationGraph graph, Methodology methodology, ReadPositions read)
        {
            _model = model;
            _graph = graph;
            _methodology = methodology;
            _read = read;
        }

        public static Prepared Create(PruningRequest request, ComputationGraph graph, Methodology methodology)
        {
            var prepared = new Prepared(request.Model, graph, methodology, request.Task.Read);
            try
            {
                using var _ = no_grad();
                foreach (var part in request.Parts)
                {
                    var batches = Evaluator.Batches(part, request.BatchSize ?? request.Task.DefaultBatchSize, request.Model.Device);
                    var means = methodology.Value.Needs.HasFlag(AblationNeeds.DatasetMeans)
                        ? MeanReference.Compute(request.Model, graph, batches.Select(b => b.Pair), MeanAblation.SidesFor(new[] { methodology.Value })) : null;
                    var reference = new List<Tensor>();
                    var values = new List<PatchValues>();
                    double sum = 0;
                    foreach (var b in batches)
                    {
                        using var scope = NewDisposeScope();
                        var outputs = FaithfulnessMetrics.ReadOutputs(request.Model.Forward(b.Pair.Clean), request.Task.Read).contiguous();
                        var targets = MetricTargets.For(part, b.Start, b.Count, (int)outputs.shape[1]);
                        sum += FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiff, outputs, outputs, targets).Sum();
                        reference.Add(outputs.DetachFromDisposeScope());
                        var v = PatchValues.Compute(request.Model, graph, methodology.Value, methodology.Direction, b.Pair, means, part.SharedPrefix);
                        // The batch's own tensor (or, for dataset means, an alias of the shared means): kept until Dispose.
                        values.Add(v.Values is { } t ? new PatchValues(t.DetachFromDisposeScope()) : v);
                    }
                    prepared._parts.Add((part, batches, reference, values, means, sum / part.Count));
                }
                return prepared;
            }
            catch
            {
                prepared.Dispose();
                throw;
            }
        }

        /// <summary>Logit difference recovered as a ratio of means per part, averaged over parts.</summary>
        public double RatioOfMeans(SymbolicCircuit symbolic)
        {
            double total = 0;
            using var _ = no_grad();
            foreach (var (part, batches, reference, values, _, meanLogitDiff) in _parts)
            {
                var circuit = symbolic.Resolve(_graph, part.Positions, _methodology.Positions);
                double sum = 0;
                for (int b = 0; b < batches.Count; b++)
                {
                    using var scope = NewDisposeScope();
                    var batch = batches[b];
                    using var masks = PatchMasks.ForCircuit(circuit, _methodology, batch.Pair.SeqLen, part.SharedPrefix, _model.Device);
                    var outputs = FaithfulnessMetrics.ReadOutputs(Patcher.Run(_model, masks, values[b], batch.Pair.Input(_methodology.Direction)), _read);
                    var targets = MetricTargets.For(part, batch.Start, batch.Count, (int)outputs.shape[1]);
                    sum += FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiffRecoveredOfMeans, outputs, reference[b], targets, meanLogitDiff).Sum();
                }
                total += sum / part.Count;
            }
            return total / _parts.Count;
        }

        public void Dispose()
        {
            foreach (var p in _parts)
            {
                foreach (var b in p.Batches) b.Dispose();
                foreach (var r in p.Reference) r.Dispose();
                foreach (var v in p.Values) v.Values?.Dispose();
                p.Means?.Dispose();
            }
        }
    }
}
