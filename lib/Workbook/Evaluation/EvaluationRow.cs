using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Evaluation;

/// <summary>
/// One tidy result: the value of one metric for one prompt under one methodology. <see cref="Part"/> is the dataset
/// part (an IOI template such as "ABBA-3"; the task name otherwise) and <see cref="Prompt"/> the prompt's index in it.
/// </summary>
public sealed record EvaluationRow(string Task, string Part, int Prompt, Methodology Methodology, MetricKind Metric, double Value)
{
    public string MethodologyLabel => Methodology.Label;
}

/// <summary>A metric's value for the unpatched model on one prompt (the "full model" reference).</summary>
public sealed record BaselineRow(string Part, int Prompt, MetricKind Metric, double Value);

/// <summary>Per-prompt rows of every methodology, and the unpatched model's values on the same prompts.</summary>
public sealed record EvaluationResult(IReadOnlyList<EvaluationRow> Rows, IReadOnlyList<BaselineRow> FullModel)
{
    /// <summary>The evaluated model's name and whether its weights are random (figures say so); null when the caller did not say.</summary>
    public ModelLabel? Model { get; init; }
}

/// <summary>
/// The model a result comes from, as reports and figures name it: its id or folder name (never a snapshot hash), and
/// whether it is a random-weights stand-in, which every figure title then states.
/// </summary>
public sealed record ModelLabel(string Name, bool RandomWeights)
{
    public const string RandomWeightsNote = "random weights, not the real model";

    /// <summary><paramref name="title"/> with "(random weights, not the real model)" appended for a stand-in.</summary>
    public string Mark(string title) => RandomWeights ? $"{title} ({Name}: {RandomWeightsNote})" : title;

    /// <summary>Marks <paramref name="title"/> when <paramref name="label"/> is a stand-in (a null label changes nothing).</summary>
    public static string Mark(ModelLabel? label, string title) => label is null ? title : label.Mark(title);

    public override string ToString() => RandomWeights ? $"{Name} ({RandomWeightsNote})" : Name;
}
