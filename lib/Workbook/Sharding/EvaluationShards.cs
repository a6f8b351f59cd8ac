using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Sharding;

/// <summary>A methodology by its label, its one spelling: a merge rebuilds the same record with <see cref="Methodology.Parse"/>.</summary>
public sealed record MethodologyEntry(string Label)
{
    public static MethodologyEntry Of(Methodology m) => new(m.Label);

    /// <summary>The methodology the label spells (an error naming the label when this version cannot read it).</summary>
    public Methodology Checked()
    {
        try
        {
            return Methodology.Parse(Label);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"methodology '{Label}': {e.Message}", e);
        }
    }
}

/// <summary>A dataset part of an evaluation: its name and number of prompts.</summary>
public sealed record PartSize(string Name, int Prompts);

/// <summary>Everything about an evaluation that every shard shares and a merge needs besides the rows.</summary>
public sealed record EvaluationPlan
{
    public required string Task { get; init; }
    public required string Circuit { get; init; }
    /// <summary>The model's name: its id or folder name, never a snapshot hash (the robustness report shows it).</summary>
    public required string Model { get; init; }
    /// <summary>True when the model is a random-weights stand-in (the report says so).</summary>
    public bool RandomWeights { get; init; }
    public required IReadOnlyList<MethodologyEntry> Methodologies { get; init; }
    /// <summary>Metric CLI names, in the order of the rows.</summary>
    public required IReadOnlyList<string> Metrics { get; init; }
    public required IReadOnlyList<PartSize> Parts { get; init; }
    public required int BatchSize { get; init; }
    public required int Units { get; init; }

    public static EvaluationPlan Of(EvaluationRequest request, string circuit, string model) => new()
    {
        Task = request.Task.Name, Circuit = circuit, Model = model, RandomWeights = request.ModelLabel?.RandomWeights ?? false,
        Methodologies = request.Methodologies.Select(MethodologyEntry.Of).ToArray(),
        Metrics = request.Metrics.Select(m => m.Label).ToArray(),
        Parts = request.Parts.Select(p => new PartSize(p.Name, p.Count)).ToArray(),
        BatchSize = request.BatchSize,
        Units = EvaluationUnits.Enumerate(request.Parts, request.Methodologies.Count, request.BatchSize).Count,
    };

    public IReadOnlyList<EvaluationUnit> EnumerateUnits() => EvaluationUnits.Enumerate(Parts.Select(p => p.Prompts).ToArray(), Methodologies.Count, BatchSize);
}

/// <summary>One metric's values on a unit's prompts, in prompt order.</summary>
public sealed record MetricValues(string Metric, double[] Values);

/// <summary>
/// The rows of one evaluation unit: methodology (by label) on prompts [FirstPrompt, FirstPrompt + Prompts) of a part,
/// every metric; and for the first methodology's units, the unpatched model's values on the same prompts.
/// </summary>
public sealed record EvaluationUnitResult(int Index, string Part, string Methodology, int FirstPrompt, int Prompts,
    IReadOnlyList<MetricValues> Values, IReadOnlyList<MetricValues>? FullModel);

/// <summary>
/// Splits an evaluation's rows into its work units (what a shard writes) and puts the units of every shard back
/// together into exactly the rows, in exactly the order, of one unsharded evaluation.
/// </summary>
public static class EvaluationShards
{
    /// <summary>The units of <paramref name="range"/>, from the rows of a run that evaluated (at least) those units.</summary>
    public static IReadOnlyList<EvaluationUnitResult> Split(EvaluationPlan plan, EvaluationResult result, UnitRange range)
    {
        var rows = result.Rows.ToDictionary(r => (r.Part, r.Methodology.Label, r.Metric.Label, r.Prompt), r => r.Value);
        var fullModel = result.FullModel.ToDictionary(r => (r.Part, r.Metric.Label, r.Prompt), r => r.Value);
        double Row(string part, string methodology, string metric, int prompt) => rows.TryGetValue((part, methodology, metric, prompt), out double v) ? v
            : throw new InvalidOperationException($"The evaluation has no row for {methodology}, {metric}, '{part}' prompt {prompt}.");
        double Full(string part, string metric, int prompt) => fullModel.TryGetValue((part, metric, prompt), out double v) ? v
            : throw new InvalidOperationException($"The evaluation has no unpatched value for {metric}, '{part}' prompt {prompt}.");

        var units = new List<EvaluationUnitResult>();
        foreach (var u in plan.EnumerateUnits().Where(u => range.Contains(u.Index)))
        {
            string part = plan.Parts[u.Part].Name, label = plan.Methodologies[u.Methodology].Label;
            var prompts = Enumerable.Range(u.FirstPrompt, u.Prompts).ToArray();
            var values = plan.Metrics.Select(m => new MetricValues(m, prompts.Select(i => Row(part, label, m, i)).ToArray())).ToArray();
            var full = u.Methodology == 0 ? plan.Metrics.Select(m => new MetricValues(m, prompts.Select(i => Full(part, m, i)).ToArray())).ToArray() : null;
            units.Add(new EvaluationUnitResult(u.Index, part, label, u.FirstPrompt, u.Prompts, values, full));
        }
        return units;
    }

    /// <summary>
    /// The rows and unpatched values of the whole evaluation from every unit's result, in unit order: the same rows in the
    /// same order as <see cref="Evaluator.RunWithBaseline"/> gives unsharded (part, methodology, batch, metric, prompt).
    /// </summary>
    public static EvaluationResult Combine(EvaluationPlan plan, IReadOnlyList<EvaluationUnitResult> results)
    {
        var expected = plan.EnumerateUnits();
        if (results.Count != expected.Count) throw new ArgumentException($"The evaluation has {expected.Count} work units, but {results.Count} results were given.");
        var methodologies = plan.Methodologies.Select(m => m.Checked()).ToArray();
        var metrics = plan.Metrics.Select(MetricKind.Parse).ToArray();
        var rows = new List<EvaluationRow>();
        var baseline = new List<BaselineRow>();
        for (int i = 0; i < expected.Count; i++)
        {
            var (want, got) = (expected[i], results[i]);
            string part = plan.Parts[want.Part].Name, label = plan.Methodologies[want.Methodology].Label;
            if (got.Index != i) throw new ArgumentException($"Work unit {i} is missing (found unit {got.Index} in its place).");
            if (got.Part != part || got.Methodology != label || got.FirstPrompt != want.FirstPrompt || got.Prompts != want.Prompts)
                throw new ArgumentException($"Work unit {i} should be {label} on '{part}' prompts {want.FirstPrompt}..{want.FirstPrompt + want.Prompts - 1}, " +
                    $"but holds {got.Methodology} on '{got.Part}' prompts {got.FirstPrompt}..{got.FirstPrompt + got.Prompts - 1}.");
            void Add(IReadOnlyList<MetricValues>? values, string what, Action<MetricKind, int, double> add)
            {
                if (values is null || values.Count != metrics.Length || values.Select(v => v.Metric).SequenceEqual(plan.Metrics) is false)
                    throw new ArgumentException($"Work unit {i}: {what} should list the metrics {string.Join(", ", plan.Metrics)}.");
                for (int m = 0; m < metrics.Length; m++)
                {
                    if (values[m].Values.Length != want.Prompts)
                        throw new ArgumentException($"Work unit {i}: {what} of {plan.Metrics[m]} has {values[m].Values.Length} values for {want.Prompts} prompts.");
                    for (int p = 0; p < want.Prompts; p++) add(metrics[m], want.FirstPrompt + p, values[m].Values[p]);
                }
            }
            if (want.Methodology == 0) Add(got.FullModel, "the unpatched model's values", (metric, prompt, v) => baseline.Add(new BaselineRow(part, prompt, metric, v)));
            Add(got.Values, "the values", (metric, prompt, v) => rows.Add(new EvaluationRow(plan.Task, part, prompt, methodologies[want.Methodology], metric, v)));
        }
        // Unpatched values come with the first methodology's units: part, batch, metric, prompt, as the evaluator lists them.
        return new EvaluationResult(rows, baseline);
    }
}
