using System.Globalization;
using System.Text;
using System.Text.Json;
using Workbook.Discovery;
using Workbook.Figures;
using Workbook.Metrics;

namespace Workbook.Curves;

/// <summary>Faithfulness curves as CSV, JSON and a plotly figure.</summary>
public static class CurveOutputs
{
    static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>One row per methodology and point: methodology, metric, edges, kept, fraction, mean metric, faithfulness, cpr, cmd.</summary>
    public static string Csv(IReadOnlyList<FaithfulnessCurve> curves)
    {
        var sb = new StringBuilder("methodology,metric,edges,kept,fraction,mean_metric,faithfulness,full_model,empty_circuit,cpr,cmd\n");
        foreach (var c in curves)
            foreach (var p in c.Points)
                sb.Append(c.Label).Append(',').Append(c.Metric.Label).Append(',').Append(p.Edges).Append(',').Append(p.Kept).Append(',')
                  .Append(F(p.Fraction)).Append(',').Append(F(p.MeanMetric)).Append(',').Append(F(p.Faithfulness)).Append(',')
                  .Append(F(c.FullModel)).Append(',').Append(F(c.EmptyCircuit)).Append(',').Append(F(c.Cpr)).Append(',').Append(F(c.Cmd)).Append('\n');
        return sb.ToString();
    }

    public sealed record CurveJson(string Methodology, string Metric, int TotalEdges, double FullModel, double EmptyCircuit, double Cpr, double Cmd,
        IReadOnlyList<CurvePoint> Points);

    public sealed record CurvesJson(string Scores, string Normalisation, string Integration, IReadOnlyList<CurveJson> Curves);

    public const string Normalisation = "f(C) = (m(C) - m(empty)) / (m(model) - m(empty)), m = the metric's mean over every prompt (MIB)";
    public const string Integration = "trapezoidal rule over x = fraction of edges kept (linear), divided by the x range covered; CPR = area of f, CMD = area of |1 - f|";

    public static string Json(IReadOnlyList<FaithfulnessCurve> curves, string scores) => JsonSerializer.Serialize(
        new CurvesJson(scores, Normalisation, Integration,
            curves.Select(c => new CurveJson(c.Label, c.Metric.Label, c.TotalEdges, c.FullModel, c.EmptyCircuit, c.Cpr, c.Cmd, c.Points)).ToArray()),
        new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });

    /// <summary>Faithfulness against the percentage of edges kept (log axis), one line per methodology labelled with its CPR and CMD.</summary>
    public static Figure Figure(IReadOnlyList<FaithfulnessCurve> curves, string title)
    {
        var series = curves.Select(c => new LineSeries($"{c.Label} (CPR {c.Cpr:F2}, CMD {c.Cmd:F2})",
            c.Points.Select(p => 100 * p.Fraction).ToArray(), c.Points.Select(p => p.Faithfulness).ToArray())).ToList();
        var figure = Charts.Lines(series, new ChartOptions
        {
            Title = title, XTitle = "edges kept (% of the graph, log scale)", YTitle = "faithfulness (1 = the model, 0 = the empty circuit)",
            ReferenceLines = new[] { new ReferenceLine(1, "model"), new ReferenceLine(0, "empty circuit", Color: "#999999") },
        });
        return figure with { Layout = figure.Layout with { XAxis = (figure.Layout.XAxis ?? new Axis()) with { Type = "log" } } };
    }

    /// <summary>A plain-text table: each curve's CPR and CMD, then its points.</summary>
    public static string Text(IReadOnlyList<FaithfulnessCurve> curves, string scores)
    {
        var w = new StringWriter();
        w.WriteLine($"faithfulness curves of {scores}: {curves[0].TotalEdges} edges, metric {curves[0].Metric.Label}");
        w.WriteLine($"normalisation: {Normalisation}");
        w.WriteLine($"areas: {Integration}");
        foreach (var c in curves)
        {
            w.WriteLine($"{c.Label}: CPR {c.Cpr.ToString("F3", CultureInfo.InvariantCulture)}, CMD {c.Cmd.ToString("F3", CultureInfo.InvariantCulture)} " +
                $"(model {c.FullModel.ToString("G5", CultureInfo.InvariantCulture)}, empty circuit {c.EmptyCircuit.ToString("G5", CultureInfo.InvariantCulture)})");
            w.WriteLine("  edges  kept  faithfulness");
            foreach (var p in c.Points) w.WriteLine($"  {p.Edges,5}  {p.Kept,4}  {p.Faithfulness.ToString("F3", CultureInfo.InvariantCulture)}");
        }
        return w.ToString();
    }

    /// <summary>Edge scores of a scores file on <paramref name="graph"/>: every edge of the graph must be scored, once.</summary>
    public static IReadOnlyList<double> ScoresOnGraph(Graph.ComputationGraph graph, IReadOnlyList<KeyValuePair<string, double>> edges)
    {
        var scores = new double[graph.EdgeCount];
        var seen = new bool[graph.EdgeCount];
        foreach (var (name, score) in edges)
        {
            var edge = Circuits.Circuit.ParseEdge(graph, name, "scored edge").Edge;
            if (seen[edge.Index]) throw new ArgumentException($"The scores name edge {name} twice.");
            seen[edge.Index] = true;
            scores[edge.Index] = score;
        }
        int missing = Array.IndexOf(seen, false);
        if (missing >= 0) throw new ArgumentException($"The scores do not cover edge {graph.Edges[missing].Name} of the model's {graph.Describe()}.");
        return scores;
    }
}
