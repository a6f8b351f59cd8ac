using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Metrics;

/// <summary>What a metric reads besides the outputs.</summary>
[Flags]
public enum MetricNeeds
{
    None = 0,
    /// <summary>Answer token ids (not real-valued targets).</summary>
    TokenAnswers = 1,
    /// <summary>Wrong-answer token ids to compare the answer with.</summary>
    WrongAnswers = 2,
    /// <summary>The unpatched model's mean logit difference over the whole dataset part.</summary>
    ModelMeanLogitDiff = 4,
}

/// <summary>
/// The outputs a metric compares, read at the task's positions: the patched run's and the unpatched model's on the
/// clean prompts, each [B, P, V] in float64, with the targets of the same prompts.
/// </summary>
public sealed record MetricInputs(Tensor Circuit, Tensor Model, MetricTargets Targets, double? ModelMeanLogitDiff = null);

/// <summary>
/// A faithfulness metric of spec B, as a small record that knows its label, its description, what it needs and how
/// to compute its value for each prompt (the values box plots show; summaries aggregate them). <see cref="Vocabulary"/>
/// lists them all; the command line, exports, figures and reports read it. Add one by deriving from this record and
/// registering it (see docs/architecture.md).
/// </summary>
/// <param name="Label">The one spelling used everywhere (command line, exports, reports), e.g. <c>logit-diff-recovered</c>.</param>
/// <param name="Description">One line for help texts and reports.</param>
/// <param name="Needs">What it reads besides the outputs.</param>
[System.Text.Json.Serialization.JsonConverter(typeof(MetricKindJson))]
public abstract record MetricKind(string Label, string Description, MetricNeeds Needs)
{
    /// <summary>The unit of its values in texts ("%" for percentages).</summary>
    public virtual string Unit => "";
    /// <summary>A percentage of the full model's logit difference: 100 is perfect faithfulness.</summary>
    public virtual bool IsRecoveredPercent => false;

    /// <summary>The value for each prompt, [B] in float64. <see cref="FaithfulnessMetrics.PerPrompt"/> has checked <see cref="Needs"/>.</summary>
    public abstract Tensor Compute(MetricInputs inputs);

    public sealed override string ToString() => Label;

    /// <summary>logit[answer] − logit[wrong answer] (means over several of each) at the read position(s).</summary>
    public static MetricKind LogitDiff { get; } = new LogitDiffMetric();
    /// <summary>"Average [Logit Diff %]": per prompt 100 · LD_circuit(p) / LD_model(p); its mean is the mean of ratios.</summary>
    public static MetricKind LogitDiffRecovered { get; } = new LogitDiffRecoveredMetric();
    /// <summary>
    /// "[Average Logit Diff] %" (Wang et al.): per prompt 100 · LD_circuit(p) divided by the dataset's mean LD_model, so
    /// that the mean over a dataset's prompts is exactly the ratio of means.
    /// </summary>
    public static MetricKind LogitDiffRecoveredOfMeans { get; } = new LogitDiffRecoveredOfMeansMetric();
    /// <summary>The answer's logit (mean over answers).</summary>
    public static MetricKind AnswerLogit { get; } = new AnswerLogitMetric();
    /// <summary>The answer's softmax probability over the whole vocabulary.</summary>
    public static MetricKind AnswerProb { get; } = new AnswerProbMetric();
    /// <summary>100 when the answer is the argmax over the whole vocabulary, else 0 (mean: the percentage of prompts).</summary>
    public static MetricKind CorrectPercent { get; } = new CorrectPercentMetric();
    /// <summary>100 when the answer's logit is the largest among the answer and the wrong answers (ties count as correct).</summary>
    public static MetricKind CorrectVsCandidatesPercent { get; } = new CorrectVsCandidatesMetric();
    /// <summary>KL(model ‖ circuit) of the output distributions, against the unpatched model on the clean prompt.</summary>
    public static MetricKind Kl { get; } = new KlMetric();
    /// <summary>Mean squared difference between the circuit's and the unpatched model's outputs.</summary>
    public static MetricKind Mse { get; } = new MseMetric();

    /// <summary>Every metric the workbook knows, in the order help texts list them.</summary>
    public static Vocabulary<MetricKind> Vocabulary { get; } = new("metric", m => m.Label,
        new[] { LogitDiff, LogitDiffRecovered, LogitDiffRecoveredOfMeans, AnswerLogit, AnswerProb, CorrectPercent, CorrectVsCandidatesPercent, Kl, Mse }
            .Select(SingleSpelling));

    /// <summary>Every metric, built-in and registered.</summary>
    public static IReadOnlyList<MetricKind> All => Vocabulary.Examples;

    /// <summary>The metric spelled <paramref name="label"/> (case-insensitive), or an error naming the known ones.</summary>
    public static MetricKind Parse(string label) => Vocabulary.Parse(label);

    /// <summary>The vocabulary entry of a metric: its label.</summary>
    public static VocabularyEntry<MetricKind> SingleSpelling(MetricKind metric) =>
        new(metric.Label, metric.Description, text => text == metric.Label ? metric : null, new[] { metric });
}

/// <summary>A metric in JSON: its label.</summary>
public sealed class MetricKindJson() : LabelJsonConverter<MetricKind>(m => m.Label, MetricKind.Parse);
