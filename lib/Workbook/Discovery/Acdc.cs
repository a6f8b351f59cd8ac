using System.Globalization;
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

    /// <summary>One independent run per threshold of <paramref name="taus"/>, in that order (see <see cref="Scores"/>).</summary>
    public static IReadOnlyList<AcdcRun> Run(HookedTransformer model, ComputationGraph graph, DiscoveryData data,
        IReadOnlyList<PatchValues> values, DiscoveryTarget target, IReadOnlyList<double> taus, IProgress<WorkProgress>? progress)
    {
        var order = EdgeOrder(graph);
        if (taus.Count == 0) throw new ArgumentException("ACDC needs at least one threshold.");
        var runs = new List<AcdcRun>();
        var cache = new Dictionary<string, double>(StringComparer.Ordinal);
        var ablated = new bool[graph.EdgeCount];
        int forwards = 0;
        var tracker = new ProgressTracker(progress, "ACDC", taus.Count, "threshold runs");
        tracker.Start();

        double Faithfulness()
        {
            string key = Key(ablated);
            if (cache.TryGetValue(key, out double cached)) return cached;
            forwards++;
            var edges = graph.Edges.Where(e => ablated[e.Index]).Select(e => new CircuitEdge(e, null)).ToList();
            double sum = 0;
            using var _ = no_grad();
            for (int b = 0; b < data.Batches.Count; b++)
            {
                using var scope = NewDisposeScope();
                var batch = data.Batches[b];
                using var masks = PatchMasks.ForEdges(graph, edges, batch.Pair.SeqLen, batch.Prefix, model.Device);
                var logits = Patcher.Run(model, masks, values[b], batch.Pair.Clean);
                sum += data.PerPromptLoss(target, logits, batch).sum().item<double>();
            }
            return cache[key] = sum / data.PromptCount;
        }

        for (int i = 0; i < taus.Count; i++)
        {
            double tau = taus[i];
            Array.Clear(ablated);
            double previous = 0.0;
            var removed = new List<Edge>();
            int visited = 0;
            foreach (var edge in order)
            {
                if (++visited % 256 == 0)
                    tracker.Working($"tau {tau.ToString("G3", CultureInfo.InvariantCulture)}: edge {visited} of {order.Count}, {forwards} forward passes so far");
                ablated[edge.Index] = true;
                double faith = Faithfulness();
                if (faith - previous < tau)
                {
                    removed.Add(edge);
                    previous = faith;
                }
                else
                {
                    ablated[edge.Index] = false;
                }
            }
            runs.Add(new AcdcRun(tau, removed, previous));
            tracker.Advance(1, $"tau {tau.ToString("G3", CultureInfo.InvariantCulture)}: removed {removed.Count} of {graph.EdgeCount} edges ({forwards} forward passes so far)");
        }
        return runs;
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
