using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Evaluation;

/// <summary>The distribution of one metric's per-prompt values under one methodology.</summary>
public sealed record MethodologySummary(Methodology Methodology, MetricKind Metric, DistributionSummary Values)
{
    public string Label => Methodology.Label;
}

public static class Summaries
{
    /// <summary>One summary per (methodology, metric), in the order the rows first mention them.</summary>
    public static IReadOnlyList<MethodologySummary> ByMethodology(IEnumerable<EvaluationRow> rows, int seed = 0, int resamples = Statistics.DefaultResamples) =>
        rows.GroupBy(r => (r.Methodology, r.Metric))
            .Select(g => new MethodologySummary(g.Key.Methodology, g.Key.Metric, Statistics.Summarize(g.Select(r => r.Value), seed, resamples)))
            .ToArray();

    /// <summary>
    /// Paired comparison of two methodologies on one metric, prompt by prompt (matched by dataset part and prompt
    /// index): A − B differences, their median with a bootstrap interval, the sign test and the Wilcoxon signed-rank test.
    /// </summary>
    public static PairedComparison Compare(IEnumerable<EvaluationRow> rows, Methodology a, Methodology b, MetricKind metric, int seed = 0, int resamples = Statistics.DefaultResamples)
    {
        var list = rows.Where(r => r.Metric == metric).ToList();
        var byA = list.Where(r => r.Methodology == a).ToDictionary(r => (r.Part, r.Prompt), r => r.Value);
        var byB = list.Where(r => r.Methodology == b).ToDictionary(r => (r.Part, r.Prompt), r => r.Value);
        if (byA.Count == 0) throw new ArgumentException($"No rows for methodology {a.Label} and metric {metric.Label}.");
        if (byB.Count == 0) throw new ArgumentException($"No rows for methodology {b.Label} and metric {metric.Label}.");
        var keys = byA.Keys.Where(byB.ContainsKey).OrderBy(k => k.Part, StringComparer.Ordinal).ThenBy(k => k.Prompt).ToArray();
        if (keys.Length == 0) throw new ArgumentException("The two methodologies share no prompts.");
        return Statistics.Compare(a.Label, keys.Select(k => byA[k]).ToArray(), b.Label, keys.Select(k => byB[k]).ToArray(), seed, resamples);
    }
}
