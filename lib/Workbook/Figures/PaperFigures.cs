using System.Globalization;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Figures;

/// <summary>
/// The paper's figures, built from evaluation rows (see <see cref="PaperExperiments"/> for the runs behind them).
/// Each takes the rows it plots and the reference values to draw, and returns a plotly figure description.
/// </summary>
public static class PaperFigures
{
    /// <summary>The line every logit-difference-recovered plot shows: the full model.</summary>
    public static ReferenceLine PerfectFaithfulness { get; } = new(100, "Perfect faithfulness (100%)", "dash", "#2a2a2a");

    /// <summary>A reported value, e.g. Wang et al.'s 87 % for IOI.</summary>
    public static ReferenceLine Reported(double value, string who = "Reported") =>
        new(value, $"{who} ({value.ToString("G4", CultureInfo.InvariantCulture)}%)", "dot", "#D55E00");

    /// <summary>"Nodes / Specific Toks", "Edges / All Toks": the paper's column names for component × positions.</summary>
    public static string ComponentAndPositions(Methodology m) =>
        $"{(m.Component == Component.Node ? "Nodes" : "Edges")} / {(m.Positions == TokenPositions.Specific ? "Specific Toks" : "All Toks")}";

    /// <summary>"Resample", "Mean (ABC)", "Mean (clean+corrupt)", "Zero", ...: an ablation value as the paper's legends name it.</summary>
    public static string AblationName(AblationValue v) => v.Legend;

    /// <summary>
    /// Box plots of one metric's per-prompt values: one box per category (e.g. component × positions), one colour
    /// per series (e.g. ablation value), every prompt drawn as a point; categories and series in the rows' order.
    /// </summary>
    public static Figure Boxes(IEnumerable<EvaluationRow> rows, MetricKind metric, Func<Methodology, string> category, Func<Methodology, string> series, ChartOptions options)
    {
        var selected = rows.Where(r => r.Metric == metric).ToList();
        if (selected.Count == 0) throw new ArgumentException($"There are no rows for metric {metric.Label}.");
        var seriesNames = selected.Select(r => series(r.Methodology)).Distinct().ToList();
        var categories = selected.Select(r => category(r.Methodology)).Distinct().ToList();
        var boxes = seriesNames.Select(s => new BoxSeries(s, categories
            .Select(c => new BoxGroup(c, selected.Where(r => series(r.Methodology) == s && category(r.Methodology) == c).Select(r => r.Value).ToArray()))
            .Where(g => g.Values.Count > 0).ToArray())).ToArray();
        return Charts.Box(boxes, options);
    }

    /// <summary>
    /// Figure 3: per-prompt logit difference recovered for nodes/edges × specific/all tokens, coloured by ablation
    /// value, y axis clipped to [−700, 700] as in the paper, lines at 100 % and (when given) the reported value.
    /// </summary>
    public static Figure NodesEdgesTokensValues(EvaluationResult result, double? reported = null, (double, double)? yRange = null, string? title = null)
    {
        var lines = new List<ReferenceLine> { PerfectFaithfulness };
        if (reported is double r) lines.Add(Reported(r, "Reported by Wang et al."));
        return Boxes(result.Rows, MetricKind.LogitDiffRecovered, ComponentAndPositions, m => m.Value.Legend, new ChartOptions
        {
            Title = ModelLabel.Mark(result.Model, title ?? "Faithfulness of the IOI circuit: nodes vs edges, specific vs all tokens, resample vs mean ablation"),
            YTitle = "Logit difference recovered per prompt (%)", YRange = yRange ?? (-700, 700), ReferenceLines = lines, YTickSuffix = "%",
        });
    }

    /// <summary>
    /// Figure 4, panels 1–2: both aggregations against the ABC dataset (batch) size, per name order (ABBA, BABA,
    /// from the part names) and their average. Per template first, then averaged over templates with equal weight
    /// (spec F.11).
    /// </summary>
    public static Figure AggregationsOverBatchSize(AbcSizeSweep sweep, double? reported = null)
    {
        Figure Panel(MetricKind metric, string heading)
        {
            var x = sweep.Points.Select(p => (double)p.BatchSize).ToArray();
            var byOrder = sweep.Points.Select(p => PerOrderMeans(p.Rows, metric)).ToArray();
            var orders = byOrder.SelectMany(d => d.Keys).Distinct().OrderBy(k => k, StringComparer.Ordinal).ToList();
            var series = orders.Select(o => new LineSeries(o, x, byOrder.Select(d => d.TryGetValue(o, out var v) ? v : double.NaN).ToArray())).ToList();
            if (orders.Count > 1) series.Add(new LineSeries("Average", x, byOrder.Select(d => d.Values.Average()).ToArray()));
            var lines = new List<ReferenceLine> { PerfectFaithfulness };
            if (reported is double r) lines.Add(Reported(r));
            var fig = Charts.Lines(series, new ChartOptions { Title = heading, XTitle = "ABC dataset size (prompts per mean)", YTitle = "%", ReferenceLines = lines });
            return fig with { Layout = fig.Layout with { XAxis = fig.Layout.XAxis! with { Type = "log", TickValues = x } } };
        }
        return Charts.Panels(ModelLabel.Mark(sweep.Model, "Node circuit, batch-mean (ABC) ablation: the two ways of averaging logit difference recovered"),
            new[] { Panel(MetricKind.LogitDiffRecoveredOfMeans, "[Average Logit Diff] % (ratio of means)"), Panel(MetricKind.LogitDiffRecovered, "Average [Logit Diff %] (mean of ratios)") });
    }

    /// <summary>
    /// Figure 4, panels 3–4: every prompt's logit difference recovered per batch size, one panel per name order,
    /// y clipped to [−200, 500] as in the paper.
    /// </summary>
    public static Figure SpreadOverBatchSize(AbcSizeSweep sweep, double? reported = null, (double, double)? yRange = null)
    {
        var orders = sweep.Points.SelectMany(p => p.Rows).Select(r => Order(r.Part)).Distinct().OrderBy(o => o, StringComparer.Ordinal).ToList();
        var lines = new List<ReferenceLine> { PerfectFaithfulness };
        if (reported is double r) lines.Add(Reported(r));
        var panels = orders.Take(Layout.MaxSubplots).Select(order => Charts.Box(new[]
        {
            new BoxSeries("per-prompt logit difference recovered", sweep.Points.Select(p => new BoxGroup(p.BatchSize.ToString(CultureInfo.InvariantCulture),
                p.Rows.Where(x => x.Metric == MetricKind.LogitDiffRecovered && Order(x.Part) == order).Select(x => x.Value).ToArray())).ToArray()),
        }, new ChartOptions
        {
            Title = $"{order} predictions", XTitle = "ABC dataset size", YTitle = "Logit difference recovered (%)", YRange = yRange ?? (-200, 500),
            ReferenceLines = lines, YTickSuffix = "%",
        })).ToArray();
        return Charts.Panels(ModelLabel.Mark(sweep.Model, "Per-prompt spread of the node circuit's faithfulness"), panels);
    }

    /// <summary>
    /// Figure 9a / 10a style: grouped bars of the share of prompts whose answer beats every candidate, per category
    /// and ablation value, with the full model's share and (when given) a reported value.
    /// </summary>
    public static Figure CandidateBars(EvaluationResult result, double? reported = null, string? title = null)
    {
        var rows = result.Rows.Where(r => r.Metric == MetricKind.CorrectVsCandidatesPercent).ToList();
        var series = rows.Select(r => r.Methodology.Value.Legend).Distinct().ToList();
        var categories = rows.Select(r => ComponentAndPositions(r.Methodology)).Distinct().ToList();
        var bars = series.Select(s => new BarSeries(s, categories.Select(c => new BarPoint(c,
            MeanOrNaN(rows.Where(r => r.Methodology.Value.Legend == s && ComponentAndPositions(r.Methodology) == c).Select(r => r.Value)))).ToArray())).ToArray();
        var lines = new List<ReferenceLine>();
        double full = MeanOrNaN(result.FullModel.Where(b => b.Metric == MetricKind.CorrectVsCandidatesPercent).Select(b => b.Value));
        if (double.IsFinite(full)) lines.Add(new ReferenceLine(full, $"Full model ({full.ToString("F1", CultureInfo.InvariantCulture)}%)", "dash", "#2a2a2a"));
        if (reported is double r) lines.Add(Reported(r, "Reported faithfulness"));
        return Charts.Bars(bars, new ChartOptions
        {
            Title = ModelLabel.Mark(result.Model, title ?? "Share of prompts whose answer beats every candidate"), YTitle = "Correct vs candidates (%)", YRange = (0, 105),
            ReferenceLines = lines, YTickSuffix = "%",
        }, "F1");
    }

    /// <summary>Figure 9b / 10b style: per-prompt probability of the answer per category and ablation value, plus the full model's box.</summary>
    public static Figure AnswerProbabilityBoxes(EvaluationResult result, string? title = null)
    {
        var rows = result.Rows.Where(r => r.Metric == MetricKind.AnswerProb).ToList();
        var series = rows.Select(r => r.Methodology.Value.Legend).Distinct().ToList();
        var categories = rows.Select(r => ComponentAndPositions(r.Methodology)).Distinct().ToList();
        var boxes = series.Select(s => new BoxSeries(s, categories.Select(c => new BoxGroup(c,
            rows.Where(r => r.Methodology.Value.Legend == s && ComponentAndPositions(r.Methodology) == c).Select(r => r.Value).ToArray())).ToArray())).ToList();
        boxes.Add(new BoxSeries("Full model", new[] { new BoxGroup("Full model", result.FullModel.Where(b => b.Metric == MetricKind.AnswerProb).Select(b => b.Value).ToArray()) }));
        return Charts.Box(boxes, new ChartOptions { Title = ModelLabel.Mark(result.Model, title ?? "Probability of the correct answer per prompt"), YTitle = "p(answer)", YRange = (0, 1) });
    }

    /// <summary>Figure 10a: grouped bars "Ablated model", "Circuit", "Full model" per ablation value.</summary>
    public static Figure CircuitVsAblatedBars(CircuitVsAblated data, double? chance = null, string? title = null)
    {
        var values = data.Circuit.Select(r => r.Methodology.Value.Legend).Distinct().ToList();
        double full = MeanOrNaN(data.FullModel.Where(b => b.Metric == MetricKind.CorrectVsCandidatesPercent).Select(b => b.Value));
        var series = values.Select(v => new BarSeries(v, new[]
        {
            new BarPoint("Ablated model", MeanOrNaN(data.AblatedModel.Where(r => r.Metric == MetricKind.CorrectVsCandidatesPercent && r.Methodology.Value.Legend == v).Select(r => r.Value))),
            new BarPoint("Circuit", MeanOrNaN(data.Circuit.Where(r => r.Metric == MetricKind.CorrectVsCandidatesPercent && r.Methodology.Value.Legend == v).Select(r => r.Value))),
            new BarPoint("Full model", full),
        })).ToArray();
        var lines = chance is double c ? new[] { new ReferenceLine(c, $"Chance ({c.ToString("F1", CultureInfo.InvariantCulture)}%)", "dot", "#777777") } : Array.Empty<ReferenceLine>();
        return Charts.Bars(series, new ChartOptions
        {
            Title = ModelLabel.Mark(data.Model, title ?? "Circuit vs ablated model: share of prompts whose answer beats the candidates"), YTitle = "Correct vs candidates (%)",
            YRange = (0, 105), ReferenceLines = lines, YTickSuffix = "%",
        }, "F1");
    }

    /// <summary>Figure 10b: the answer's probability per prompt for the ablated model, the circuit and the full model, per ablation value.</summary>
    public static Figure CircuitVsAblatedProbability(CircuitVsAblated data, string? title = null)
    {
        var values = data.Circuit.Select(r => r.Methodology.Value.Legend).Distinct().ToList();
        var full = data.FullModel.Where(b => b.Metric == MetricKind.AnswerProb).Select(b => b.Value).ToArray();
        var boxes = values.Select(v => new BoxSeries(v, new[]
        {
            new BoxGroup("Ablated model", data.AblatedModel.Where(r => r.Metric == MetricKind.AnswerProb && r.Methodology.Value.Legend == v).Select(r => r.Value).ToArray()),
            new BoxGroup("Circuit", data.Circuit.Where(r => r.Metric == MetricKind.AnswerProb && r.Methodology.Value.Legend == v).Select(r => r.Value).ToArray()),
            new BoxGroup("Full model", full),
        })).ToArray();
        return Charts.Box(boxes, new ChartOptions { Title = ModelLabel.Mark(data.Model, title ?? "Probability of the correct answer per prompt"), YTitle = "p(answer)", YRange = (0, 1) });
    }

    /// <summary>
    /// Section 5: mean error of each Tracr ground truth under zero and resample ablation (one panel per task, its
    /// own metric), bars labelled with the value.
    /// </summary>
    public static Figure TracrZeroVsResample(IReadOnlyList<TracrAblation> results)
    {
        var panels = results.GroupBy(r => r.Task).Select(g =>
        {
            var metric = g.First().Metric;
            var values = g.SelectMany(r => r.Rows).Select(r => r.Methodology.Value.Legend).Distinct().ToList();
            var series = values.Select(v => new BarSeries(v, g.Select(r => new BarPoint(CircuitLabel(r.Circuit),
                MeanOrNaN(r.Rows.Where(x => x.Methodology.Value.Legend == v).Select(x => x.Value)))).ToArray())).ToArray();
            return Charts.Bars(series, new ChartOptions { Title = $"{TaskTitle(g.Key)}: mean {metric.Label.ToUpperInvariant()} (lower = more faithful)", YTitle = metric.Label.ToUpperInvariant() }, "G3");
        }).ToArray();
        return Charts.Panels("The same Tracr circuits judged by zero and by resample ablation", panels);
    }

    /// <summary>
    /// The robustness report as a figure: the per-prompt distribution of every methodology that keeps the circuit,
    /// most faithful first, with the full model's median (and 100 % for recovered-percent metrics).
    /// </summary>
    public static Figure Robustness(RobustnessReport report, (double, double)? yRange = null)
    {
        var order = report.Faithfulness.Select(e => e.Methodology).ToList();
        var lines = new List<ReferenceLine>();
        if (report.Metric.IsRecoveredPercent) lines.Add(PerfectFaithfulness);
        else if (double.IsFinite(report.FullModelMedian))
            lines.Add(new ReferenceLine(report.FullModelMedian, $"Full model median ({report.FullModelMedian.ToString("G3", CultureInfo.InvariantCulture)})", "dash", "#2a2a2a"));
        var rows = report.Rows.Where(r => r.Metric == report.Metric && order.Contains(r.Methodology)).OrderBy(r => order.IndexOf(r.Methodology));
        var figure = Boxes(rows, report.Metric, m => $"#{order.IndexOf(m) + 1} {ShortLabel(m)}", m => m.Component == Component.Node ? "Nodes" : "Edges", new ChartOptions
        {
            Title = $"Circuit '{report.Circuit}' on {report.Task} ({report.ModelDescription}): {report.Metric.Label} per prompt, most faithful methodology first",
            YTitle = report.Metric.Label, YRange = yRange ?? (report.Metric.IsRecoveredPercent ? (-200, 400) : null), ReferenceLines = lines,
            Height = 520,
        });
        // One box per category (each methodology is either nodes or edges): overlay, so boxes sit on their ticks.
        return figure with { Layout = figure.Layout with { BoxMode = "overlay" } };
    }

    /// <summary>
    /// ROC panels side by side (Figures 5 and 12: one panel per task and ground truth, one curve per algorithm), each a
    /// step curve with its area; at most four panels per figure.
    /// </summary>
    public static Figure RocPanels(string title, IReadOnlyList<(string Title, IReadOnlyList<RocLine> Lines)> panels, int? columns = null) =>
        Charts.Panels(title, panels.Select(p => Charts.Roc(p.Lines, new ChartOptions { Title = p.Title, Height = 380 })).ToArray(), columns);

    /// <summary>
    /// Figure 5: edge search on both Tracr models, one panel per task and ground truth in the paper's order (Reverse
    /// and X-Proportion against "theirs", then against "ours"), one step curve per algorithm.
    /// </summary>
    public static Figure Figure5(TracrRocData data) =>
        RocFigure("Figure 5 · edge search with resample ablation, against each ground truth", data.Figure5, p => p.Title, columns: 2);

    /// <summary>Figure 12: against the resample ground truth ("ours"), node search (top row) and edge search (bottom row).</summary>
    public static Figure Figure12(TracrRocData data) =>
        RocFigure("Figure 12 · node search vs edge search, against the resample ground truth (ours)", data.Figure12,
            p => $"{p.Title}, {p.Search.Name()} search", columns: 2);

    /// <summary>One panel per distinct title, in the order of <paramref name="curves"/>; one line per algorithm.</summary>
    static Figure RocFigure(string title, IReadOnlyList<RocPanel> curves, Func<RocPanel, string> panelTitle, int columns)
    {
        if (curves.Count == 0) throw new ArgumentException("No ROC curves to draw: compute TracrRocData with the searches this figure needs.");
        var panels = curves.GroupBy(panelTitle)
            .Select(g => (g.Key, (IReadOnlyList<RocLine>)g.Select(c => new RocLine(c.Algorithm.DisplayName(),
                c.Curve.Points.Select(p => p.FalsePositiveRate).ToArray(), c.Curve.Points.Select(p => p.TruePositiveRate).ToArray(), c.Curve.Area)).ToList()))
            .ToList();
        return RocPanels(title, panels, Math.Min(columns, panels.Count));
    }

    static string ShortLabel(Methodology m) => $"{(m.Positions == TokenPositions.Specific ? "specific" : "all")} toks, {m.Value.Legend}";

    static string CircuitLabel(string circuit) =>
        circuit.EndsWith("-ours", StringComparison.Ordinal) ? "Ours (resample ground truth)"
        : circuit.EndsWith("-theirs", StringComparison.Ordinal) ? "Theirs (zero-ablation ground truth)" : circuit;

    static string TaskTitle(string task) => task switch
    {
        "tracr-xproportion" => "X-Proportion",
        "tracr-reverse" => "Reverse",
        _ => task,
    };

    /// <summary>"ABBA" from "ABBA-3"; the part name itself when it has no order.</summary>
    public static string Order(string part) => part.Split('-')[0];

    /// <summary>Per name order: the mean over templates of each template's mean value of <paramref name="metric"/>.</summary>
    /// <summary>
    /// Figure 4's curve values: per name order (ABBA, BABA), the mean over templates of each template's mean of
    /// <paramref name="metric"/> (non-finite values left out), as <see cref="AggregationsOverBatchSize"/> draws them.
    /// </summary>
    public static Dictionary<string, double> PerOrderMeans(IEnumerable<EvaluationRow> rows, MetricKind metric) =>
        rows.Where(r => r.Metric == metric && double.IsFinite(r.Value))
            .GroupBy(r => r.Part).Select(g => (Order: Order(g.Key), Mean: g.Average(r => r.Value)))
            .GroupBy(t => t.Order).ToDictionary(g => g.Key, g => g.Average(t => t.Mean));

    static double MeanOrNaN(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        return finite.Length == 0 ? double.NaN : finite.Average();
    }
}
