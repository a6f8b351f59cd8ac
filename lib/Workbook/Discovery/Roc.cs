using Workbook.Circuits;
using Workbook.Graph;

namespace Workbook.Discovery;

/// <summary>A point of a ROC curve: the rates after selecting every edge whose importance reaches a threshold.</summary>
/// <param name="Selected">How many edges are selected at this point.</param>
public sealed record RocPoint(double FalsePositiveRate, double TruePositiveRate, int Selected);

/// <summary>
/// A pessimistic ROC curve of edge scores against a ground-truth circuit (spec A.5 "ROC"). Thresholds run down the
/// distinct importances (|score|), so edges with equal importance enter together (k = 0..n_edges in the spec, each tie
/// group once); (0, 0) is prepended and (1, 1) appended. The curve is a step that goes right before it goes up ("hv"),
/// so among equal scores the false positives count first: ties never help the method. <see cref="Area"/> is the area
/// under that step curve.
/// </summary>
public sealed record RocCurve(IReadOnlyList<RocPoint> Points, double Area, int Positives, int Negatives)
{
    /// <summary>The highest true-positive rate reached with no false positive.</summary>
    public double TruePositiveRateAtZeroFalsePositives => Points.Where(p => p.FalsePositiveRate == 0).Max(p => p.TruePositiveRate);

    /// <summary>Every ground-truth edge ranks strictly above every other edge: TPR 1 at FPR 0.</summary>
    public bool RecoversTruthExactly => TruePositiveRateAtZeroFalsePositives == 1;
}

public static class Roc
{
    /// <summary>
    /// The ROC curve of <paramref name="importance"/> (one value per item; larger = predicted more strongly; +∞ allowed)
    /// against <paramref name="truth"/> (true for ground-truth items).
    /// </summary>
    public static RocCurve Compute(IReadOnlyList<double> importance, IReadOnlyList<bool> truth)
    {
        if (importance.Count != truth.Count) throw new ArgumentException($"{importance.Count} scores but {truth.Count} ground-truth flags.");
        int positives = truth.Count(t => t), negatives = truth.Count - positives;
        if (positives == 0) throw new ArgumentException("The ground truth is empty: the true-positive rate is undefined.");
        if (negatives == 0) throw new ArgumentException("The ground truth holds every edge: the false-positive rate is undefined.");
        for (int i = 0; i < importance.Count; i++)
            if (double.IsNaN(importance[i])) throw new ArgumentException($"Score {i} is NaN.");
        var order = Enumerable.Range(0, importance.Count).OrderByDescending(i => importance[i]).ToArray();
        var points = new List<RocPoint> { new(0, 0, 0) };
        int tp = 0, fp = 0;
        for (int i = 0; i < order.Length;)
        {
            double level = importance[order[i]];
            for (; i < order.Length && importance[order[i]] == level; i++)
            {
                if (truth[order[i]]) tp++;
                else fp++;
            }
            Add(points, new RocPoint((double)fp / negatives, (double)tp / positives, tp + fp));
        }
        Add(points, new RocPoint(1, 1, truth.Count));
        double area = 0;
        for (int i = 1; i < points.Count; i++)
            area += (points[i].FalsePositiveRate - points[i - 1].FalsePositiveRate) * points[i - 1].TruePositiveRate;
        return new RocCurve(points, area, positives, negatives);
    }

    static void Add(List<RocPoint> points, RocPoint p)
    {
        var last = points[^1];
        if (last.FalsePositiveRate == p.FalsePositiveRate && last.TruePositiveRate == p.TruePositiveRate) return;
        points.Add(p);
    }

    /// <summary>
    /// The ROC curve of <paramref name="scores"/> against <paramref name="truth"/>, a circuit of the same graph whose
    /// positions are ignored (name-level edges, as the paper's Tracr ground truths).
    /// </summary>
    public static RocCurve Compute(EdgeScores scores, Circuit truth)
    {
        var g = scores.Graph;
        if (truth.Graph.View != GraphView.Factorized || truth.Graph.EdgeCount != g.EdgeCount || truth.Graph.Config.Name != g.Config.Name)
            throw new ArgumentException($"The ground truth belongs to the {truth.Graph.Describe()}, the scores to the {g.Describe()}.");
        var inTruth = new bool[g.EdgeCount];
        foreach (var e in truth.DistinctEdges()) inTruth[e.Index] = true;
        return Compute(g.Edges.Select(scores.Importance).ToArray(), inTruth);
    }

    /// <summary>
    /// The ROC curve of scores by edge name (as read from a scores file) against ground-truth edge names. Every
    /// ground-truth edge must be scored: a missing one means the scores and the circuit belong to different models.
    /// </summary>
    public static RocCurve Compute(IReadOnlyList<KeyValuePair<string, double>> scoresByName, IEnumerable<string> truthEdges)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < scoresByName.Count; i++)
            if (!index.TryAdd(scoresByName[i].Key, i)) throw new ArgumentException($"Edge {scoresByName[i].Key} is scored twice.");
        var truth = new bool[scoresByName.Count];
        foreach (var name in truthEdges)
        {
            if (!index.TryGetValue(name, out int i))
                throw new ArgumentException($"Ground-truth edge {name} has no score: the scores and the circuit belong to different models or graphs." +
                    Util.NearestNames.DidYouMean(name, index.Keys));
            truth[i] = true;
        }
        return Compute(scoresByName.Select(s => Math.Abs(s.Value)).ToArray(), truth);
    }
}
