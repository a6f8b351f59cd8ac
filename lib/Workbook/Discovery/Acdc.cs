using TorchSharp;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using static TorchSharp.torch;

namespace Workbook.Discovery;

/// <summary>ACDC's thresholds (spec A.5): τ = base · 10^exponent, bases outer, exponents inner.</summary>
public sealed record AcdcOptions
{
    /// <summary>Exponents −25..−2 (24 values), as in the paper's Tracr experiments.</summary>
    public IReadOnlyList<int> TauExponents { get; init; } = Enumerable.Range(-25, 24).ToArray();
    public IReadOnlyList<int> TauBases { get; init; } = new[] { 1, 3, 5, 7, 9 };

    /// <summary>
    /// Candidate sets evaluated in one stacked forward pass (<see cref="CircuitStack"/>); 1 is the one-circuit path, null
    /// chooses from the activation-memory estimate. The removed edges and scores are the same either way.
    /// </summary>
    public int? CircuitsPerForward { get; init; }

    /// <summary>The thresholds in the order the runs happen (120 by default).</summary>
    public IReadOnlyList<double> Taus() =>
        TauBases.SelectMany(b => TauExponents.Select(e => b * Math.Pow(10, e))).ToArray();
}

/// <summary>
/// ACDC (Conmy et al. 2023) as AutoCircuit runs it for the paper (spec A.5, F.15). Each threshold τ is an independent
/// run from the unpatched model: edges are visited in <see cref="EdgeOrder"/>; each is ablated (its mask set to 1, patch
/// values from the corrupt prompts by default); when the faithfulness loss rises by less than τ over the last accepted
/// value the edge stays removed, else it is restored. An edge's score is the smallest τ at which some run removed it
/// (+∞ when none did). Since a run's loss depends only on which edges are ablated, losses are cached by that set: runs
/// with nearby thresholds share most of their forward passes, which is what makes 120 runs cheap.
///
/// The runs go in lockstep: at each visited edge every run's candidate set (its ablated set plus the edge) is looked up
/// in the cache, and the distinct sets missing from it are evaluated together, several per forward pass
/// (<see cref="CircuitStack"/>). A run's decisions depend only on the losses of its own candidate sets, which are the
/// same whenever and with whichever other sets they are computed, so the runs decide exactly as one after the other.
/// </summary>
internal static class Acdc
{
    /// <summary>
    /// The fixed visiting order: destination layer descending (the output first, as ACDC works backwards), then destination in
    /// graph order, then source from the latest to the earliest. (The original iterates a Python set within a layer, so its
    /// order within a layer is arbitrary; spec F.15.)
    /// </summary>
    public static IReadOnlyList<Edge> EdgeOrder(ComputationGraph graph) => graph.Edges
        .OrderByDescending(e => e.Destination.Layer)
        .ThenBy(e => e.Destination.Index)
        .ThenByDescending(e => e.Source.Index)
        .ToList();

    /// <summary>One run's state: its threshold, the edges ablated now, the last accepted loss and the edges it removed.</summary>
    sealed class RunState(double tau, int edgeCount)
    {
        public double Tau { get; } = tau;
        public bool[] Ablated { get; } = new bool[edgeCount];
        public double Previous { get; set; }
        public List<Edge> Removed { get; } = new();
    }

    /// <summary>
    /// One independent run per threshold of <paramref name="taus"/>, in that order (see <see cref="Scores"/>);
    /// <paramref name="circuitsPerForward"/> as <see cref="AcdcOptions.CircuitsPerForward"/>.
    /// </summary>
    public static (IReadOnlyList<AcdcRun> Runs, AcdcWork Work) Run(HookedTransformer model, ComputationGraph graph, DiscoveryData data,
        IReadOnlyList<PatchValues> values, DiscoveryTarget target, IReadOnlyList<double> taus, IProgress<WorkProgress>? progress,
        int? circuitsPerForward = null)
    {
        if (taus.Count == 0) throw new ArgumentException("ACDC needs at least one threshold.");
        CircuitStack.CheckRequested(circuitsPerForward);
        var order = EdgeOrder(graph);
        var cache = new Dictionary<string, double>(StringComparer.Ordinal);
        var runs = taus.Select(t => new RunState(t, graph.EdgeCount)).ToArray();
        int forwards = 0, sets = 0;
        var tracker = new ProgressTracker(progress, "ACDC", order.Count, "edges");
        tracker.Start($"{taus.Count} threshold runs in lockstep");

        // The losses of candidate sets not yet in the cache, each the mean per-prompt loss over every batch.
        void Evaluate(IReadOnlyList<(string Key, bool[] Ablated)> missing)
        {
            var sums = new double[missing.Count];
            using var _ = no_grad();
            for (int b = 0; b < data.Batches.Count; b++)
            {
                using var scope = NewDisposeScope();
                var batch = data.Batches[b];
                var masks = missing.Select(m => PatchMasks.ForEdges(graph, graph.Edges.Where(e => m.Ablated[e.Index]).Select(e => new CircuitEdge(e, null)),
                    batch.Pair.SeqLen, batch.Prefix, model.Device)).ToArray();
                try
                {
                    int perForward = CircuitStack.CircuitsPerForward(model.Config, batch.Count, batch.Pair.SeqLen, masks.Length, circuitsPerForward, device: model.Device);
                    forwards += CircuitStack.ForEach(model, masks, values[b], batch.Pair.Clean, perForward,
                        (i, logits) => sums[i] += data.PerPromptLoss(target, logits, batch).sum().item<double>());
                }
                finally
                {
                    foreach (var m in masks) m.Dispose();
                }
            }
            for (int i = 0; i < missing.Count; i++) cache[missing[i].Key] = sums[i] / data.PromptCount;
            sets += missing.Count;
        }

        var keys = new string[runs.Length];
        int visited = 0;
        foreach (var edge in order)
        {
            var missing = new List<(string Key, bool[] Ablated)>();
            var pending = new HashSet<string>(StringComparer.Ordinal);
            for (int r = 0; r < runs.Length; r++)
            {
                runs[r].Ablated[edge.Index] = true;
                keys[r] = Key(runs[r].Ablated);
                if (!cache.ContainsKey(keys[r]) && pending.Add(keys[r])) missing.Add((keys[r], (bool[])runs[r].Ablated.Clone()));
            }
            if (missing.Count > 0) Evaluate(missing);
            foreach (var (run, key) in runs.Zip(keys))
            {
                double faith = cache[key];
                if (faith - run.Previous < run.Tau)
                {
                    run.Removed.Add(edge);
                    run.Previous = faith;
                }
                else
                {
                    run.Ablated[edge.Index] = false;
                }
            }
            if (++visited % 16 == 0 || visited == order.Count)
                tracker.Advance(visited - tracker.Done, $"edge {visited} of {order.Count}: {sets} ablated sets evaluated in {forwards} forward passes");
        }
        return (runs.Select(r => new AcdcRun(r.Tau, r.Removed, r.Previous)).ToList(), new AcdcWork(sets, forwards));
    }

    /// <summary>An edge's score: the smallest threshold of a run that removed it (+∞ when none did). A minimum is exact, so runs may come in any grouping.</summary>
    public static double[] Scores(ComputationGraph graph, IEnumerable<AcdcRun> runs)
    {
        var scores = Enumerable.Repeat(double.PositiveInfinity, graph.EdgeCount).ToArray();
        foreach (var run in runs)
            foreach (var edge in run.Removed) scores[edge.Index] = Math.Min(scores[edge.Index], run.Tau);
        return scores;
    }

    static string Key(bool[] ablated)
    {
        var bytes = new byte[(ablated.Length + 7) / 8];
        for (int i = 0; i < ablated.Length; i++)
            if (ablated[i]) bytes[i >> 3] |= (byte)(1 << (i & 7));
        return Convert.ToBase64String(bytes);
    }
}
