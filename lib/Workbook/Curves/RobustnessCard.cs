using System.Globalization;
using System.Net;
using System.Text;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Figures;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Curves;

/// <summary>A prompt on which the circuit is least like the model under the card's reference methodology.</summary>
public sealed record WorstPrompt(string Part, int Prompt, double Value, double Deviation);

/// <summary>
/// One page about one circuit: its size, its faithfulness under each methodology of the paper's grid (per-prompt
/// distribution with bootstrap intervals, from <see cref="RobustnessReport"/>), MIB's CPR and CMD under the paper's
/// methodology choices, the prompts it fits worst, and a plain-language verdict.
/// </summary>
public sealed record RobustnessCard
{
    public required RobustnessReport Report { get; init; }
    public required int CircuitEdges { get; init; }
    public required int GraphEdges { get; init; }
    /// <summary>Curves of the circuit's own ranking (its edges first) or of the scores given; empty when the circuit has no edge variant.</summary>
    public required IReadOnlyList<FaithfulnessCurve> Curves { get; init; }
    public required string CurveRanking { get; init; }
    public required Methodology Reference { get; init; }
    public required IReadOnlyList<WorstPrompt> WorstPrompts { get; init; }
    public required string Verdict { get; init; }

    /// <summary>The most worst prompts a card lists.</summary>
    public const int WorstCount = 5;

    /// <summary>
    /// The ranking a circuit gives on its own: its edges (score 1) before every other edge (score 0). Within each group the
    /// order is the graph's, so the curve up to the circuit's size depends on that order; give real scores where they exist.
    /// </summary>
    public static EdgeScores CircuitRanking(Circuit circuit, string model, string task) => new(circuit.Graph,
        circuit.Graph.Edges.Select(e => circuit.Contains(e) || (circuit.PositionsOf(e)?.Count ?? 0) > 0 ? 1.0 : 0.0).ToArray(), new DiscoveryInfo
        {
            Model = model, Task = task, Algorithm = DiscoveryAlgorithm.Eap, Search = SearchSpace.Edge, Ablation = AblationValue.Resample,
            Target = DiscoveryTarget.LogitDiff, Prompts = 0, Seed = 0,
            Settings = new[] { new KeyValuePair<string, string>("ranking", "circuit edges first (1), the rest after (0)") },
        });

    public static RobustnessCard Build(RobustnessReport report, int circuitEdges, int graphEdges, IReadOnlyList<FaithfulnessCurve> curves, string curveRanking)
    {
        var entries = report.Faithfulness.Count > 0 ? report.Faithfulness : report.CircuitAblated;
        // The reference methodology: the paper's default where the grid has it (edge, resample, specific positions).
        var reference = entries.OrderBy(e => e.Methodology.Value == AblationValue.Resample ? 0 : 1)
            .ThenBy(e => e.Methodology.Component == Component.Edge ? 0 : 1).ThenBy(e => e.Methodology.Positions == TokenPositions.Specific ? 0 : 1)
            .First().Methodology;
        var worst = report.Rows.Where(r => r.Methodology == reference && r.Metric == report.Metric && double.IsFinite(r.Value))
            .Select(r => new WorstPrompt(r.Part, r.Prompt, r.Value, Math.Abs(r.Value - report.FullModelMedian)))
            .OrderByDescending(w => w.Deviation).ThenBy(w => w.Part, StringComparer.Ordinal).ThenBy(w => w.Prompt).Take(WorstCount).ToList();
        return new RobustnessCard
        {
            Report = report, CircuitEdges = circuitEdges, GraphEdges = graphEdges, Curves = curves, CurveRanking = curveRanking, Reference = reference,
            WorstPrompts = worst, Verdict = VerdictOf(report, curves),
        };
    }

    /// <summary>
    /// The verdict. For percentage-recovered metrics a methodology counts as faithful when its median lies within 80–120 %
    /// of the model (the paper's band); for other metrics only the spread across methodologies is reported.
    /// </summary>
    static string VerdictOf(RobustnessReport report, IReadOnlyList<FaithfulnessCurve> curves)
    {
        var entries = report.Faithfulness;
        var sb = new StringBuilder();
        if (entries.Count == 0) sb.Append("The grid ablated only the circuit itself, so it says how much the behaviour needs the circuit, not whether the circuit suffices. ");
        else if (report.Metric.IsRecoveredPercent)
        {
            int faithful = entries.Count(e => e.Values.Median >= 80 && e.Values.Median <= 120);
            sb.Append(faithful == entries.Count
                ? $"Robust: the circuit is faithful (median within 80–120 % of the model) under all {entries.Count} methodologies tested. "
                : faithful == 0
                    ? $"Not faithful: the median leaves 80–120 % of the model under every one of the {entries.Count} methodologies tested. "
                    : $"Fragile: the circuit is faithful under {faithful} of {entries.Count} methodologies, so the claim holds only for some measurement choices. ");
        }
        sb.Append(report.Sensitivity.Statement.TrimEnd());
        if (!sb.ToString().EndsWith('.')) sb.Append('.');
        if (curves.Count > 0)
        {
            var lo = curves.MinBy(c => c.Cpr)!;
            var hi = curves.MaxBy(c => c.Cpr)!;
            sb.Append($" Across circuit sizes (MIB), CPR ranges from {lo.Cpr.ToString("F2", CultureInfo.InvariantCulture)} ({lo.Label}) to " +
                $"{hi.Cpr.ToString("F2", CultureInfo.InvariantCulture)} ({hi.Label}).");
        }
        return sb.ToString();
    }

    static string F(double v) => double.IsFinite(v) ? v.ToString(Math.Abs(v) >= 100 ? "F0" : Math.Abs(v) >= 1 ? "F1" : "G3", CultureInfo.InvariantCulture) : "n/a";

    static IEnumerable<string[]> EntryRows(RobustnessReport r) => r.Faithfulness.Concat(r.CircuitAblated).Select(e => new[]
    {
        e.Label, F(e.Values.Median), $"{F(e.Values.MedianCi.Low)}..{F(e.Values.MedianCi.High)}", F(e.Values.Mean),
        $"{F(e.Values.MeanCi.Low)}..{F(e.Values.MeanCi.High)}", $"{F(e.Values.Q1)}..{F(e.Values.Q3)}",
    });

    static readonly string[] EntryHeader = { "methodology", "median", "95% CI", "mean", "95% CI", "IQR" };

    /// <summary>The card as Markdown (names escaped by the caller's choice of circuit; table cells escape '|').</summary>
    public string ToMarkdown()
    {
        static string Cell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
        var r = Report;
        var w = new StringWriter();
        w.WriteLine($"# Circuit robustness card: {Cell(r.Circuit)}");
        w.WriteLine();
        w.WriteLine($"Task {Cell(r.Task)} on {Cell(r.Model)}, {r.Prompts} prompts, metric {r.Metric.Label} (the model: median {F(r.FullModelMedian)}).");
        w.WriteLine();
        w.WriteLine($"**Size:** {CircuitEdges} of {GraphEdges} edges ({(100.0 * CircuitEdges / GraphEdges).ToString("F1", CultureInfo.InvariantCulture)} %).");
        w.WriteLine();
        w.WriteLine($"**Verdict:** {Verdict}");
        w.WriteLine();
        w.WriteLine("## Faithfulness under each methodology");
        w.WriteLine();
        w.WriteLine("| " + string.Join(" | ", EntryHeader) + " |");
        w.WriteLine("|" + string.Concat(EntryHeader.Select(_ => "---|")));
        foreach (var row in EntryRows(r)) w.WriteLine("| " + string.Join(" | ", row.Select(Cell)) + " |");
        w.WriteLine();
        w.WriteLine("## Across circuit sizes (MIB's CPR and CMD)");
        w.WriteLine();
        if (Curves.Count == 0) w.WriteLine("No curve: the circuit has no edge variant.");
        else
        {
            w.WriteLine($"Ranking: {Cell(CurveRanking)}. {CurveOutputs.Normalisation}; {CurveOutputs.Integration}.");
            w.WriteLine();
            w.WriteLine("| methodology | CPR (higher is better) | CMD (lower is better) |");
            w.WriteLine("|---|---|---|");
            foreach (var c in Curves) w.WriteLine($"| {c.Label} | {c.Cpr.ToString("F3", CultureInfo.InvariantCulture)} | {c.Cmd.ToString("F3", CultureInfo.InvariantCulture)} |");
        }
        w.WriteLine();
        w.WriteLine($"## Worst prompts ({Reference.Label})");
        w.WriteLine();
        w.WriteLine("| part | prompt | value | distance from the model's median |");
        w.WriteLine("|---|---|---|---|");
        foreach (var p in WorstPrompts) w.WriteLine($"| {Cell(p.Part)} | {p.Prompt} | {F(p.Value)} | {F(p.Deviation)} |");
        return w.ToString();
    }

    /// <summary>The card's figures: the per-prompt distributions of the faithfulness entries and the curves.</summary>
    public IReadOnlyList<Figure> Figures()
    {
        var r = Report;
        var boxes = Charts.Box(new[]
        {
            new BoxSeries(r.Metric.Label, r.Faithfulness.Select(e => new BoxGroup(e.Label,
                r.Rows.Where(x => x.Methodology == e.Methodology && x.Metric == r.Metric).Select(x => x.Value).ToArray())).ToArray()),
        }, new ChartOptions
        {
            Title = $"{r.Circuit}: per-prompt {r.Metric.Label} under each methodology", YTitle = r.Metric.Label,
            ReferenceLines = new[] { new ReferenceLine(r.FullModelMedian, "model (median)") },
        });
        var list = new List<Figure> { boxes };
        if (Curves.Count > 0) list.Add(CurveOutputs.Figure(Curves, $"{r.Circuit}: faithfulness across circuit sizes"));
        return list;
    }

    /// <summary>The card as HTML: a fragment (for a notebook report) or, with <paramref name="standalone"/>, a whole page.</summary>
    public string ToHtml(bool standalone = true)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        var r = Report;
        var body = new StringBuilder();
        body.Append($"<section class=\"robustness-card\"><h1>Circuit robustness card: {E(r.Circuit)}</h1>");
        body.Append($"<p>Task {E(r.Task)} on {E(r.Model)}, {r.Prompts} prompts, metric {E(r.Metric.Label)} (the model: median {E(F(r.FullModelMedian))}).</p>");
        body.Append($"<p><b>Size:</b> {CircuitEdges} of {GraphEdges} edges.</p>");
        body.Append($"<p class=\"verdict\"><b>Verdict:</b> {E(Verdict)}</p>");
        body.Append("<h2>Faithfulness under each methodology</h2><table><tr>");
        foreach (var h in EntryHeader) body.Append($"<th>{E(h)}</th>");
        body.Append("</tr>");
        foreach (var row in EntryRows(r)) body.Append("<tr>" + string.Concat(row.Select(c => $"<td>{E(c)}</td>")) + "</tr>");
        body.Append("</table><h2>Across circuit sizes (MIB's CPR and CMD)</h2>");
        if (Curves.Count == 0) body.Append("<p>No curve: the circuit has no edge variant.</p>");
        else
        {
            body.Append($"<p>Ranking: {E(CurveRanking)}. {E(CurveOutputs.Normalisation)}; {E(CurveOutputs.Integration)}.</p><table><tr><th>methodology</th><th>CPR</th><th>CMD</th></tr>");
            foreach (var c in Curves)
                body.Append($"<tr><td>{E(c.Label)}</td><td>{c.Cpr.ToString("F3", CultureInfo.InvariantCulture)}</td><td>{c.Cmd.ToString("F3", CultureInfo.InvariantCulture)}</td></tr>");
            body.Append("</table>");
        }
        body.Append($"<h2>Worst prompts ({E(Reference.Label)})</h2><table><tr><th>part</th><th>prompt</th><th>value</th><th>distance from the model's median</th></tr>");
        foreach (var p in WorstPrompts) body.Append($"<tr><td>{E(p.Part)}</td><td>{p.Prompt}</td><td>{E(F(p.Value))}</td><td>{E(F(p.Deviation))}</td></tr>");
        body.Append("</table>");
        foreach (var f in Figures()) body.Append(FigureHtml.Fragment(f));
        body.Append("</section>");
        return standalone ? FigureHtml.Page($"Circuit robustness card: {r.Circuit}", body.ToString()) : body.ToString();
    }
}
