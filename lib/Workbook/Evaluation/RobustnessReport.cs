using System.Globalization;
using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Evaluation;

/// <summary>Which methodologies a robustness report varies (null: the paper's choices for the task and circuit).</summary>
public sealed record ReportGrid
{
    public IReadOnlyList<Component>? Components { get; init; }
    public IReadOnlyList<AblationValue>? Values { get; init; }
    public IReadOnlyList<TokenPositions>? Positions { get; init; }
    public IReadOnlyList<AblatedSet>? Sets { get; init; }
    public PatchDirection Direction { get; init; } = PatchDirection.AblateClean;
}

/// <summary>One methodology of the report with its per-prompt distribution.</summary>
public sealed record ReportEntry
{
    public required int Rank { get; init; }
    public required Methodology Methodology { get; init; }
    public required DistributionSummary Values { get; init; }
    /// <summary>For logit-difference-recovered metrics: the other aggregation, Wang et al.'s ratio of means (averaged over parts).</summary>
    public double? RatioOfMeans { get; init; }
    /// <summary>|median − full model's median|: how far from perfect faithfulness (the ordering key).</summary>
    public required double Deviation { get; init; }
    public string Label => Methodology.Label;
}

/// <summary>How much one methodological choice moves the median when every other choice is held fixed.</summary>
public sealed record FactorEffect(string Factor, int Comparisons, double MeanShift, double MaxShift, string LargestSwitch);

/// <summary>The spread of the faithfulness verdict across the grid.</summary>
public sealed record Sensitivity
{
    public required double MinMedian { get; init; }
    public required double MaxMedian { get; init; }
    public double MedianRange => MaxMedian - MinMedian;
    public required string MinMethodology { get; init; }
    public required string MaxMethodology { get; init; }
    public double? MinRatioOfMeans { get; init; }
    public double? MaxRatioOfMeans { get; init; }
    public required IReadOnlyList<FactorEffect> Factors { get; init; }
    /// <summary>The factor whose switch moves the median most on average (null when nothing varies).</summary>
    public string? MostInfluentialFactor { get; init; }
    /// <summary>A sentence a researcher can quote with the claim.</summary>
    public required string Statement { get; init; }
}

/// <summary>
/// The robustness report: a circuit evaluated over the grid of methodologies the paper varies (component × ablation
/// value × token positions × ablated set), ordered by faithfulness, with the spread of every entry and a sensitivity
/// summary. Entries that keep the circuit (ablate its complement) measure faithfulness; entries that ablate the circuit
/// itself measure how much the behaviour depends on it, and are listed separately.
/// </summary>
public sealed record RobustnessReport
{
    public required string Task { get; init; }
    public required string Circuit { get; init; }
    /// <summary>The model's id or folder name (never a snapshot hash).</summary>
    public required string Model { get; init; }
    /// <summary>True when the model is a random-weights stand-in: the text and the figure say so.</summary>
    public bool RandomWeights { get; init; }
    /// <summary>The model as the text and the figure name it ("gpt2", or "gpt2 (random weights, not the real model)").</summary>
    public string ModelDescription => new ModelLabel(Model, RandomWeights).ToString();
    public required MetricKind Metric { get; init; }
    public required int Prompts { get; init; }
    public required double FullModelMedian { get; init; }
    /// <summary>Circuit kept, complement ablated: ordered from most to least faithful.</summary>
    public required IReadOnlyList<ReportEntry> Faithfulness { get; init; }
    /// <summary>Circuit ablated, everything else kept.</summary>
    public required IReadOnlyList<ReportEntry> CircuitAblated { get; init; }
    public required Sensitivity Sensitivity { get; init; }
    /// <summary>Prompt-by-prompt comparison of the highest- and lowest-median faithfulness methodologies (null with fewer than two).</summary>
    public PairedComparison? HighestVsLowest { get; init; }
    public required IReadOnlyList<EvaluationRow> Rows { get; init; }

    /// <summary>The methodologies of a grid, in a fixed order (component, value, positions, set).</summary>
    public static IReadOnlyList<Methodology> Methodologies(ReportGrid grid, CircuitChoice circuit, MeanOver taskMean)
    {
        var components = grid.Components ?? circuit.Components;
        var values = grid.Values ?? new[] { AblationValue.Resample, AblationValue.Mean(taskMean), AblationValue.Zero };
        var positions = grid.Positions ?? (circuit.HasPositions ? new[] { TokenPositions.Specific, TokenPositions.All } : new[] { TokenPositions.All });
        var sets = grid.Sets ?? new[] { AblatedSet.Complement, AblatedSet.Circuit };
        return (from c in components
                from v in values
                from p in positions
                from s in sets
                select new Methodology
                {
                    Component = c, Granularity = c == Component.Edge ? circuit.EdgeGranularity : Granularity.QkvSeparate,
                    Value = v, Positions = p, Ablate = s, Direction = grid.Direction,
                }).ToArray();
    }

    /// <summary>Builds the report from an evaluation that included <paramref name="metric"/> (and, for logit-difference
    /// recovered, <see cref="MetricKind.LogitDiffRecoveredOfMeans"/> for the second aggregation).</summary>
    public static RobustnessReport Build(string task, string circuit, string model, MetricKind metric, EvaluationResult result,
        IReadOnlyList<Methodology> methodologies, int seed = 0, int resamples = Statistics.DefaultResamples, bool randomWeights = false)
    {
        var rows = result.Rows.Where(r => r.Metric == metric).ToList();
        if (rows.Count == 0) throw new ArgumentException($"The evaluation has no rows for metric {metric.Label}.");
        double fullModel = Statistics.Median(result.FullModel.Where(r => r.Metric == metric).Select(r => r.Value).Where(double.IsFinite).OrderBy(v => v).ToArray());
        var ofMeans = metric == MetricKind.LogitDiffRecovered
            ? result.Rows.Where(r => r.Metric == MetricKind.LogitDiffRecoveredOfMeans).GroupBy(r => r.Methodology)
                .ToDictionary(g => g.Key, g => g.GroupBy(r => r.Part).Average(p => p.Average(r => r.Value)))
            : null;

        var entries = methodologies.Select(m =>
        {
            var values = Statistics.Summarize(rows.Where(r => r.Methodology == m).Select(r => r.Value), seed, resamples);
            return new ReportEntry
            {
                Rank = 0, Methodology = m, Values = values, Deviation = Math.Abs(values.Median - fullModel),
                RatioOfMeans = ofMeans is not null && ofMeans.TryGetValue(m, out var rom) ? rom : null,
            };
        }).ToList();

        List<ReportEntry> Ranked(IEnumerable<ReportEntry> list) => list
            .OrderBy(e => double.IsNaN(e.Deviation) ? double.PositiveInfinity : e.Deviation).ThenBy(e => e.Label, StringComparer.Ordinal)
            .Select((e, i) => e with { Rank = i + 1 }).ToList();
        var faithful = Ranked(entries.Where(e => e.Methodology.Ablate == AblatedSet.Complement));
        var ablated = Ranked(entries.Where(e => e.Methodology.Ablate == AblatedSet.Circuit));
        var basis = faithful.Count > 0 ? faithful : ablated;
        var sensitivity = SensitivityOf(basis, entries, metric, fullModel);
        PairedComparison? comparison = null;
        var hi = basis.Where(e => double.IsFinite(e.Values.Median)).MaxBy(e => e.Values.Median);
        var lo = basis.Where(e => double.IsFinite(e.Values.Median)).MinBy(e => e.Values.Median);
        if (hi is not null && lo is not null && hi.Methodology != lo.Methodology)
            comparison = Summaries.Compare(rows, hi.Methodology, lo.Methodology, metric, seed, resamples);
        return new RobustnessReport
        {
            Task = task, Circuit = circuit, Model = model, RandomWeights = randomWeights, Metric = metric,
            Prompts = rows.Select(r => (r.Part, r.Prompt)).Distinct().Count(), FullModelMedian = fullModel,
            Faithfulness = faithful, CircuitAblated = ablated,
            Sensitivity = sensitivity, HighestVsLowest = comparison, Rows = result.Rows,
        };
    }

    static readonly (string Name, Func<Methodology, Methodology> Blank, Func<Methodology, string> Level)[] FactorDefs =
    {
        ("component", m => m with { Component = Component.Edge, Granularity = Granularity.QkvSeparate }, m => Methodology.Components[m.Component]),
        ("ablation value", m => m with { Value = AblationValue.Zero }, m => m.Value.Label),
        ("token positions", m => m with { Positions = TokenPositions.All }, m => Methodology.PositionChoices[m.Positions]),
        ("ablated set", m => m with { Ablate = AblatedSet.Complement }, m => Methodology.Sets[m.Ablate]),
    };

    static Sensitivity SensitivityOf(List<ReportEntry> basis, List<ReportEntry> all, MetricKind metric, double fullModel)
    {
        var finite = basis.Where(e => double.IsFinite(e.Values.Median)).ToList();
        var min = finite.MinBy(e => e.Values.Median);
        var max = finite.MaxBy(e => e.Values.Median);
        var factors = new List<FactorEffect>();
        foreach (var (name, blank, level) in FactorDefs)
        {
            // The set factor compares faithfulness with necessity, so it is measured over every entry; the others over the basis.
            var pool = name == "ablated set" ? all : basis;
            var groups = pool.Where(e => double.IsFinite(e.Values.Median)).GroupBy(e => blank(e.Methodology)).Where(g => g.Select(e => level(e.Methodology)).Distinct().Count() > 1).ToList();
            if (groups.Count == 0) continue;
            var shifts = groups.Select(g =>
            {
                var lo = g.MinBy(e => e.Values.Median)!;
                var hi = g.MaxBy(e => e.Values.Median)!;
                return (Shift: hi.Values.Median - lo.Values.Median, Text: $"{level(lo.Methodology)} → {level(hi.Methodology)} at {lo.Label} (median {Fmt(lo.Values.Median)} → {Fmt(hi.Values.Median)})");
            }).ToList();
            var largest = shifts.MaxBy(s => s.Shift);
            factors.Add(new FactorEffect(name, groups.Count, shifts.Average(s => s.Shift), largest.Shift, largest.Text));
        }
        var candidates = factors.Where(f => f.Factor != "ablated set").ToList();
        var top = candidates.Count > 0 ? candidates.MaxBy(f => f.MeanShift) : null;
        double? minRom = basis.Where(e => e.RatioOfMeans is double d && double.IsFinite(d)).Select(e => e.RatioOfMeans).Min();
        double? maxRom = basis.Where(e => e.RatioOfMeans is double d && double.IsFinite(d)).Select(e => e.RatioOfMeans).Max();

        string unit = metric.Unit;
        string statement = min is null
            ? "No methodology gave a finite median."
            : $"Across {basis.Count} methodologies that keep the circuit, the median {metric.Label} ranges from {Fmt(min.Values.Median)}{unit} ({min.Label}) " +
              $"to {Fmt(max!.Values.Median)}{unit} ({max.Label}); the full model's median is {Fmt(fullModel)}{unit}." +
              (minRom is double a && maxRom is double b ? $" The ratio of means ([Average Logit Diff] %) ranges from {Fmt(a)}% to {Fmt(b)}%." : "") +
              (top is null ? "" : $" The choice that moves the median most is the {top.Factor} (by {Fmt(top.MeanShift)}{unit} on average, up to {Fmt(top.MaxShift)}{unit}).") +
              " State the methodology with any faithfulness claim.";
        return new Sensitivity
        {
            MinMedian = min?.Values.Median ?? double.NaN, MaxMedian = max?.Values.Median ?? double.NaN,
            MinMethodology = min?.Label ?? "", MaxMethodology = max?.Label ?? "",
            MinRatioOfMeans = minRom, MaxRatioOfMeans = maxRom, Factors = factors, MostInfluentialFactor = top?.Factor, Statement = statement,
        };
    }

    static string Fmt(double v) => v.ToString(Math.Abs(v) >= 100 ? "F0" : Math.Abs(v) >= 1 ? "F1" : "G3", CultureInfo.InvariantCulture);

    /// <summary>The report as a text table (what <c>workbook report</c> prints).</summary>
    public string ToText()
    {
        var w = new System.Text.StringBuilder();
        w.AppendLine($"Robustness of circuit '{Circuit}' on task '{Task}' ({ModelDescription}, {Prompts} prompts), metric {Metric.Label}: {Metric.Description}");
        w.AppendLine($"Full model median: {Fmt(FullModelMedian)}");
        void Table(string title, IReadOnlyList<ReportEntry> entries)
        {
            if (entries.Count == 0) return;
            w.AppendLine();
            w.AppendLine(title);
            bool rom = entries.Any(e => e.RatioOfMeans is not null);
            int width = Math.Max(11, entries.Max(e => e.Label.Length));
            w.AppendLine($"{"#",3}  {"methodology".PadRight(width)} {"median",9} {"mean",9} {"IQR",19} {"5%..95%",21} {"80-120%",7} {"median 95% CI",21}{(rom ? $" {"ratio of means",14}" : "")}");
            foreach (var e in entries)
            {
                var v = e.Values;
                string share = double.IsNaN(v.ShareWithin80To120) ? "" : (100 * v.ShareWithin80To120).ToString("F0", CultureInfo.InvariantCulture) + "%";
                w.AppendLine($"{e.Rank,3}  {e.Label.PadRight(width)} {Fmt(v.Median),9} {Fmt(v.Mean),9} {$"{Fmt(v.Q1)}..{Fmt(v.Q3)}",19} {$"{Fmt(v.P5)}..{Fmt(v.P95)}",21} " +
                    $"{share,7} {$"{Fmt(v.MedianCi.Low)}..{Fmt(v.MedianCi.High)}",21}" +
                    (rom ? $" {(e.RatioOfMeans is double r ? Fmt(r) : ""),14}" : ""));
            }
        }
        Table("Circuit kept, complement ablated (faithfulness), most faithful first:", Faithfulness);
        Table("Circuit ablated, rest kept:", CircuitAblated);
        w.AppendLine();
        w.AppendLine("Sensitivity (median shift when one choice changes and the others stay fixed):");
        foreach (var f in Sensitivity.Factors)
            w.AppendLine($"  {f.Factor,-16} mean {Fmt(f.MeanShift),8}  max {Fmt(f.MaxShift),8}  largest: {f.LargestSwitch}");
        if (HighestVsLowest is { } c)
            w.AppendLine($"  highest vs lowest median, prompt by prompt: median difference {Fmt(c.MedianDifference)} (95% CI {Fmt(c.MedianDifferenceCi.Low)}..{Fmt(c.MedianDifferenceCi.High)}), " +
                $"{c.Positive} higher / {c.Negative} lower / {c.Ties} equal; sign test p = {c.SignTestP:G3}, Wilcoxon p = {c.WilcoxonP:G3}");
        w.AppendLine();
        w.AppendLine(Sensitivity.Statement);
        return w.ToString();
    }
}
