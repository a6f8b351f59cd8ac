using Workbook.Util;

namespace Workbook.Metrics;

/// <summary>
/// The faithfulness metrics of spec B. Every metric has a value per prompt (what the box plots show); summaries
/// aggregate those values.
/// </summary>
public enum MetricKind
{
    /// <summary>logit[answer] − logit[wrong answer] (means over several of each) at the read position(s).</summary>
    LogitDiff,
    /// <summary>"Average [Logit Diff %]": per prompt 100 · LD_circuit(p) / LD_model(p); its mean is the mean of ratios.</summary>
    LogitDiffRecovered,
    /// <summary>
    /// "[Average Logit Diff] %" (Wang et al.): 100 · mean LD_circuit / mean LD_model. Per prompt 100 · LD_circuit(p) divided by the
    /// dataset's mean LD_model, so that the mean over a dataset's prompts is exactly the ratio of means.
    /// </summary>
    LogitDiffRecoveredOfMeans,
    /// <summary>The answer's logit (mean over answers).</summary>
    AnswerLogit,
    /// <summary>The answer's softmax probability over the whole vocabulary.</summary>
    AnswerProb,
    /// <summary>100 when the answer is the argmax over the whole vocabulary, else 0 (mean: the percentage of prompts).</summary>
    CorrectPercent,
    /// <summary>100 when the answer's logit is the largest among the answer and the wrong answers (ties count as correct).</summary>
    CorrectVsCandidatesPercent,
    /// <summary>KL(model ‖ circuit) of the output distributions, against the unpatched model on the clean prompt.</summary>
    Kl,
    /// <summary>Mean squared difference between the circuit's and the unpatched model's outputs.</summary>
    Mse,
}

public static class MetricNames
{
    static readonly (MetricKind Kind, string Name, string Description)[] Table =
    {
        (MetricKind.LogitDiff, "logit-diff", "logit difference answer − wrong answer"),
        (MetricKind.LogitDiffRecovered, "logit-diff-recovered", "Average [Logit Diff %]: mean over prompts of 100·LD_circuit/LD_model"),
        (MetricKind.LogitDiffRecoveredOfMeans, "logit-diff-recovered-of-means", "[Average Logit Diff] %: 100·mean LD_circuit / mean LD_model"),
        (MetricKind.AnswerLogit, "answer-logit", "logit of the answer"),
        (MetricKind.AnswerProb, "answer-prob", "probability of the answer (softmax over the vocabulary)"),
        (MetricKind.CorrectPercent, "correct-percent", "% of prompts whose answer is the argmax over the vocabulary"),
        (MetricKind.CorrectVsCandidatesPercent, "correct-vs-candidates-percent", "% of prompts whose answer beats every wrong answer"),
        (MetricKind.Kl, "kl", "KL divergence from the unpatched model's output distribution"),
        (MetricKind.Mse, "mse", "mean squared error against the unpatched model's output"),
    };

    public static IReadOnlyList<string> All { get; } = Table.Select(t => t.Name).ToArray();

    public static string Name(this MetricKind kind) => Table.First(t => t.Kind == kind).Name;
    public static string Description(this MetricKind kind) => Table.First(t => t.Kind == kind).Description;

    public static MetricKind Parse(string name) =>
        Table.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase)) is { Name: not null } hit
            ? hit.Kind
            : throw new ArgumentException($"Unknown metric '{name}'.{NearestNames.DidYouMean(name, All)} Metrics: {string.Join(", ", All)}.");

    /// <summary>Whether the metric needs token answers (not real-valued targets).</summary>
    public static bool NeedsTokenAnswers(this MetricKind kind) => kind is not (MetricKind.Kl or MetricKind.Mse);

    /// <summary>Whether the metric needs wrong answers (logit differences and the candidates comparison).</summary>
    public static bool NeedsWrongAnswers(this MetricKind kind) =>
        kind is MetricKind.LogitDiff or MetricKind.LogitDiffRecovered or MetricKind.LogitDiffRecoveredOfMeans or MetricKind.CorrectVsCandidatesPercent;

    /// <summary>Percent of the full model's logit difference: 100 is perfect faithfulness.</summary>
    public static bool IsRecoveredPercent(this MetricKind kind) => kind is MetricKind.LogitDiffRecovered or MetricKind.LogitDiffRecoveredOfMeans;

    /// <summary>Lower values are better (distances from the model).</summary>
    public static bool LowerIsBetter(this MetricKind kind) => kind is MetricKind.Kl or MetricKind.Mse;
}
