using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Util;

namespace Workbook.Workshop;

/// <summary>
/// Notebook 5 (discovery and ground truth): the Tracr ground truths as edge names, and the checks of ranking edges
/// by a discovery method's scores and of one ROC point computed by hand. Expected values are counted here directly
/// from the scores; the notebook then finds the same point on <see cref="Roc"/>'s curve.
/// </summary>
public static class DiscoveryExercises
{
    /// <summary>The ground truth <paramref name="truth"/> ("ours" or "theirs") of the scores' Tracr task, as edges of the scores' graph.</summary>
    public static Circuit GroundTruthOf(EdgeScores scores, GroundTruth truth) =>
        OfficialCircuits.Get($"{scores.Info.Task}-{truth.ToString().ToLowerInvariant()}").Circuit.Resolve(scores.Graph, WordPositions.Empty, TokenPositions.All);

    /// <summary>The ROC point of selecting every edge whose importance (|score|) reaches <paramref name="threshold"/>, counted edge by edge.</summary>
    public static RocPoint PointAt(EdgeScores scores, Circuit truth, double threshold)
    {
        var inTruth = truth.DistinctEdges().Select(e => e.Index).ToHashSet();
        int tp = 0, fp = 0;
        foreach (var e in scores.Graph.Edges)
            if (scores.Importance(e) >= threshold)
            {
                if (inTruth.Contains(e.Index)) tp++;
                else fp++;
            }
        return new RocPoint((double)fp / (scores.Graph.EdgeCount - inTruth.Count), (double)tp / inTruth.Count, tp + fp);
    }

    /// <summary>
    /// Exercise 5.1: the names (<c>"A0.0->Resid End"</c>) of the <paramref name="count"/> most important edges. Any
    /// choice among edges tied at the boundary passes.
    /// </summary>
    public static CheckResult TopEdges(EdgeScores scores, int count, IReadOnlyList<string>? answer)
    {
        const string exercise = "5.1";
        if (answer is null) return CheckResult.NotDone(exercise, "set topEdges (it is still null)");
        var byName = scores.Graph.Edges.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var unknown = answer.Where(n => !byName.ContainsKey(n)).ToList();
        if (unknown.Count > 0)
            return CheckResult.Fail(exercise, $"'{unknown[0]}' is not an edge of the graph.{NearestNames.DidYouMean(unknown[0], byName.Keys)} Edge names look like \"A0.0->Resid End\" (Edge.Name).");
        if (answer.Distinct().Count() != answer.Count) return CheckResult.Fail(exercise, "topEdges names an edge twice; each edge once.");
        if (answer.Count != count)
            return CheckResult.Fail(exercise, $"topEdges has {answer.Count} edges; the exercise asks for the {count} most important.");
        var ranked = scores.Ranked();
        double kth = scores.Importance(ranked[count - 1]);
        var below = answer.Where(n => scores.Importance(byName[n]) < kth).ToList();
        if (below.Count == 0)
            return CheckResult.Pass(exercise, $"the {count} most important edges (importance from {Check.Format(scores.Importance(ranked[0]))} down to {Check.Format(kth)}).");
        // A list that is a valid top-count under another ordering names that ordering's mistake.
        bool TopBy(Func<Workbook.Graph.Edge, double> key)
        {
            double boundary = scores.Graph.Edges.Select(key).OrderByDescending(v => v).ElementAt(count - 1);
            return answer.All(n => key(byName[n]) >= boundary);
        }
        string hint =
            TopBy(e => -scores.Importance(e)) ? "Those are the least important edges: sort in descending order of importance." :
            TopBy(e => scores[e]) ? "You ranked by the signed score; rank by importance = |score| (a large negative score is as important as a large positive one)." :
            $"{below.Count} of them rank lower, e.g. {below[0]} (importance {Check.Format(scores.Importance(byName[below[0]]))}, below the {count}-th largest, {Check.Format(kth)}). Use scores.Importance(edge) or scores.Ranked().";
        return CheckResult.Fail(exercise, $"topEdges is not the {count} most important edges. {hint}");
    }

    /// <summary>
    /// Exercise 5.2: the ROC point against <paramref name="truth"/> when every edge with importance ≥
    /// <paramref name="threshold"/> is selected. <paramref name="otherTruth"/> (the other ground truth) recognises a
    /// point counted against the wrong one.
    /// </summary>
    public static CheckResult PointByHand(EdgeScores scores, Circuit truth, Circuit otherTruth, double threshold, RocPoint? answer)
    {
        const string exercise = "5.2";
        if (answer is null) return CheckResult.NotDone(exercise, "set point (it is still null)");
        var expected = PointAt(scores, truth, threshold);
        string Show(RocPoint p) => $"(FPR {Check.Format(p.FalsePositiveRate)}, TPR {Check.Format(p.TruePositiveRate)}, {p.Selected} selected)";
        bool Is(RocPoint p) => Math.Abs(answer.FalsePositiveRate - p.FalsePositiveRate) < 1e-9 && Math.Abs(answer.TruePositiveRate - p.TruePositiveRate) < 1e-9;
        if (Is(expected) && answer.Selected == expected.Selected) return CheckResult.Pass(exercise, $"point = {Show(answer)}.");
        int positives = truth.DistinctEdges().Count, edges = scores.Graph.EdgeCount;
        int tp = (int)Math.Round(expected.TruePositiveRate * positives), fp = expected.Selected - tp;
        var strict = scores.Graph.Edges.Any(e => scores.Importance(e) > threshold) ? PointAt(scores, truth, NextAbove(scores, threshold)) : new RocPoint(0, 0, 0);
        string hint =
            Is(expected) ? $"The rates are right but {answer.Selected} edges were selected, not {expected.Selected}." :
            Is(new RocPoint(expected.TruePositiveRate, expected.FalsePositiveRate, 0)) ? "The rates are swapped: FalsePositiveRate is the first field, TruePositiveRate the second." :
            Is(expected with { FalsePositiveRate = (double)fp / edges }) ? $"The false-positive rate divides by the edges outside the ground truth ({edges - positives}), not by all {edges} edges." :
            Is(expected with { TruePositiveRate = expected.Selected == 0 ? 0 : (double)tp / expected.Selected }) ? $"That true-positive rate is the precision (true positives / selected); divide by the ground truth's {positives} edges." :
            Is(strict) ? "You selected edges strictly above the threshold; the curve selects importance ≥ threshold (ties enter together)." :
            Is(PointAt(scores, otherTruth, threshold)) ? "That point is counted against the other ground truth." :
            $"Count the selected edges (importance ≥ {Check.Format(threshold)}) inside the ground truth (true positives, divided by its {positives} edges) and outside it (false positives, divided by {edges - positives}).";
        return CheckResult.Fail(exercise, $"point = {Show(answer)}, but {Show(expected)} was expected. {hint}");
    }

    static double NextAbove(EdgeScores scores, double threshold) =>
        scores.Graph.Edges.Select(scores.Importance).Where(v => v > threshold).Min();
}
