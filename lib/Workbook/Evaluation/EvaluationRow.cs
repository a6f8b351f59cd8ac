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

/// <summary>Progress of an evaluation: methodology and batch counters over all dataset parts.</summary>
public sealed record EvaluationProgress(int Step, int TotalSteps, string Part, string Methodology, int Batch, int Batches)
{
    public override string ToString() => $"[{Step}/{TotalSteps}] {Part} {Methodology} batch {Batch}/{Batches}";
}

/// <summary>A metric's value for the unpatched model on one prompt (the "full model" reference).</summary>
public sealed record BaselineRow(string Part, int Prompt, MetricKind Metric, double Value);

/// <summary>Per-prompt rows of every methodology, and the unpatched model's values on the same prompts.</summary>
public sealed record EvaluationResult(IReadOnlyList<EvaluationRow> Rows, IReadOnlyList<BaselineRow> FullModel);
