using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Util;

namespace Workbook.Evaluation;

/// <summary>
/// CSV and JSON exports of evaluation results: invariant culture, round-trip number formatting, fixed column and
/// field order, so the same results always produce the same bytes.
/// </summary>
public static class EvaluationExport
{
    public static readonly string[] RowColumns =
        { "task", "part", "prompt", "methodology", "component", "granularity", "ablation", "positions", "direction", "set", "metric", "value" };

    /// <summary>A methodology's fields as the CLI spells them.</summary>
    public sealed record MethodologyFields(string Label, string Component, string Granularity, string Ablation, string Positions, string Direction, string Set)
    {
        public static MethodologyFields Of(Methodology m) => new(m.Label, Methodology.Components[m.Component], Methodology.Granularities[m.Granularity],
            m.Value.Label, Methodology.PositionChoices[m.Positions], Methodology.Directions[m.Direction], Methodology.Sets[m.Ablate]);
    }

    public static string Number(double v) => double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";

    public static string RowsCsv(IEnumerable<EvaluationRow> rows)
    {
        var sb = new StringBuilder();
        sb.Append(string.Join(',', RowColumns)).Append('\n');
        foreach (var r in rows)
        {
            var f = MethodologyFields.Of(r.Methodology);
            sb.AppendJoin(',', new[]
            {
                Csv(r.Task), Csv(r.Part), r.Prompt.ToString(CultureInfo.InvariantCulture), Csv(f.Label), f.Component, f.Granularity, Csv(f.Ablation),
                f.Positions, f.Direction, f.Set, r.Metric.Label, Number(r.Value),
            }).Append('\n');
        }
        return sb.ToString();
    }

    public static readonly string[] SummaryColumns =
    {
        "methodology", "component", "granularity", "ablation", "positions", "direction", "set", "metric", "count", "non_finite", "mean", "median",
        "q1", "q3", "p5", "p95", "min", "max", "std", "share_80_120", "mean_ci_low", "mean_ci_high", "median_ci_low", "median_ci_high",
    };

    public static string SummariesCsv(IEnumerable<MethodologySummary> summaries)
    {
        var sb = new StringBuilder();
        sb.Append(string.Join(',', SummaryColumns)).Append('\n');
        foreach (var s in summaries)
        {
            var f = MethodologyFields.Of(s.Methodology);
            var v = s.Values;
            sb.AppendJoin(',', new[]
            {
                Csv(f.Label), f.Component, f.Granularity, Csv(f.Ablation), f.Positions, f.Direction, f.Set, s.Metric.Label,
                v.Count.ToString(CultureInfo.InvariantCulture), v.NonFinite.ToString(CultureInfo.InvariantCulture),
                Number(v.Mean), Number(v.Median), Number(v.Q1), Number(v.Q3), Number(v.P5), Number(v.P95), Number(v.Min), Number(v.Max), Number(v.StdDev),
                Number(v.ShareWithin80To120), Number(v.MeanCi.Low), Number(v.MeanCi.High), Number(v.MedianCi.Low), Number(v.MedianCi.High),
            }).Append('\n');
        }
        return sb.ToString();
    }

    static string Csv(string s) => s.IndexOfAny(new[] { ',', '"', '\n', '\r' }) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    /// <summary>JSON options shared by every export: camelCase, enums as strings, NaN/Infinity as strings.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
        WriteIndented = false,
    };

    /// <summary>A row as exported: methodology fields spelled out, metric by its CLI name.</summary>
    public sealed record RowRecord(string Task, string Part, int Prompt, string Methodology, string Component, string Granularity, string Ablation,
        string Positions, string Direction, string Set, string Metric, double Value)
    {
        public static RowRecord Of(EvaluationRow r)
        {
            var f = MethodologyFields.Of(r.Methodology);
            return new(r.Task, r.Part, r.Prompt, f.Label, f.Component, f.Granularity, f.Ablation, f.Positions, f.Direction, f.Set, r.Metric.Label, r.Value);
        }
    }

    /// <summary>A summary as exported.</summary>
    public sealed record SummaryRecord(string Methodology, string Component, string Granularity, string Ablation, string Positions, string Direction,
        string Set, string Metric, DistributionSummary Values)
    {
        public int Count => Values.Count;
        public double Mean => Values.Mean;
        public double Median => Values.Median;

        public static SummaryRecord Of(MethodologySummary s)
        {
            var f = MethodologyFields.Of(s.Methodology);
            return new(f.Label, f.Component, f.Granularity, f.Ablation, f.Positions, f.Direction, f.Set, s.Metric.Label, s.Values);
        }
    }

    public sealed record EvaluationJson(IReadOnlyList<SummaryRecord> Summary, IReadOnlyList<RowRecord> Rows);

    public static string Json(IEnumerable<MethodologySummary> summaries, IEnumerable<EvaluationRow> rows) =>
        JsonSerializer.Serialize(new EvaluationJson(summaries.Select(SummaryRecord.Of).ToArray(), rows.Select(RowRecord.Of).ToArray()), JsonOptions);

    /// <summary>Writes text atomically (temporary file, then rename).</summary>
    public static void WriteFile(string path, string text) => AtomicFile.WriteAllText(path, text);
}
