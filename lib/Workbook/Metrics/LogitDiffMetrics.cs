using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Metrics;

/// <summary>logit[answer] − logit[wrong answer], per prompt.</summary>
public sealed record LogitDiffMetric()
    : MetricKind("logit-diff", "logit difference answer − wrong answer", MetricNeeds.TokenAnswers | MetricNeeds.WrongAnswers)
{
    public override Tensor Compute(MetricInputs inputs) => FaithfulnessMetrics.LogitDiff(inputs.Circuit, inputs.Targets);
}

/// <summary>"Average [Logit Diff %]": 100 · LD_circuit(p) / LD_model(p) per prompt; its mean is the mean of ratios.</summary>
public sealed record LogitDiffRecoveredMetric()
    : MetricKind("logit-diff-recovered", "Average [Logit Diff %]: mean over prompts of 100·LD_circuit/LD_model", MetricNeeds.TokenAnswers | MetricNeeds.WrongAnswers)
{
    public override string Unit => "%";
    public override bool IsRecoveredPercent => true;
    public override Tensor Compute(MetricInputs inputs) =>
        (FaithfulnessMetrics.LogitDiff(inputs.Circuit, inputs.Targets) / FaithfulnessMetrics.LogitDiff(inputs.Model, inputs.Targets)).Times(100.0);
}

/// <summary>
/// "[Average Logit Diff] %" (Wang et al.): 100 · LD_circuit(p) / mean LD_model over the dataset, so that the mean over
/// the dataset's prompts is exactly the ratio of means.
/// </summary>
public sealed record LogitDiffRecoveredOfMeansMetric()
    : MetricKind("logit-diff-recovered-of-means", "[Average Logit Diff] %: 100·mean LD_circuit / mean LD_model", MetricNeeds.TokenAnswers | MetricNeeds.WrongAnswers | MetricNeeds.ModelMeanLogitDiff)
{
    public override string Unit => "%";
    public override bool IsRecoveredPercent => true;
    public override Tensor Compute(MetricInputs inputs) =>
        FaithfulnessMetrics.LogitDiff(inputs.Circuit, inputs.Targets).Times(100.0 / (inputs.ModelMeanLogitDiff
            ?? throw new ArgumentException("The ratio of means needs the unpatched model's mean logit difference over the dataset.")));
}
