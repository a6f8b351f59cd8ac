using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Metrics;

/// <summary>The answer's logit (mean over answers and read positions).</summary>
public sealed record AnswerLogitMetric() : MetricKind("answer-logit", "logit of the answer", MetricNeeds.TokenAnswers)
{
    public override Tensor Compute(MetricInputs inputs) =>
        FaithfulnessMetrics.Gathered(inputs.Circuit, inputs.Targets.AnswerTensor(inputs.Circuit.device)).mean(new long[] { 1 });
}

/// <summary>The answer's softmax probability over the whole vocabulary.</summary>
public sealed record AnswerProbMetric()
    : MetricKind("answer-prob", "probability of the answer (softmax over the vocabulary)", MetricNeeds.TokenAnswers)
{
    public override Tensor Compute(MetricInputs inputs) =>
        FaithfulnessMetrics.Gathered(inputs.Circuit.softmax(-1), inputs.Targets.AnswerTensor(inputs.Circuit.device)).mean(new long[] { 1 });
}

/// <summary>100 when the answer is the argmax over the whole vocabulary, else 0; its mean is the percentage of prompts.</summary>
public sealed record CorrectPercentMetric()
    : MetricKind("correct-percent", "% of prompts whose answer is the argmax over the vocabulary", MetricNeeds.TokenAnswers)
{
    public override string Unit => "%";

    public override Tensor Compute(MetricInputs inputs)
    {
        var y = inputs.Circuit;
        var answers = inputs.Targets.AnswerTensor(y.device);
        if (answers.shape[2] != 1) throw new ArgumentException("correct-percent needs exactly one answer per prompt (use correct-vs-candidates-percent).");
        var correct = y.argmax(-1).eq(answers.squeeze(-1)).to(ScalarType.Float64);
        return correct.mean(new long[] { 1 }).Times(100.0);
    }
}

/// <summary>100 when the answer's logit is the largest among the answer and the wrong answers (ties count as correct).</summary>
public sealed record CorrectVsCandidatesMetric()
    : MetricKind("correct-vs-candidates-percent", "% of prompts whose answer beats every wrong answer", MetricNeeds.TokenAnswers | MetricNeeds.WrongAnswers)
{
    public override string Unit => "%";

    // Ties resolve to the correct answer: the answer is compared with the largest other candidate by >=.
    public override Tensor Compute(MetricInputs inputs)
    {
        var y = inputs.Circuit;
        var candidates = cat(new[] { inputs.Targets.AnswerTensor(y.device), inputs.Targets.WrongTensor(y.device) }, -1);
        var values = y.gather(-1, candidates);
        var others = values[.., .., 1..].amax(new long[] { -1 });
        var correct = values[.., .., 0].ge(others).to(ScalarType.Float64);
        return correct.mean(new long[] { 1 }).Times(100.0);
    }
}
