using Workbook.Model;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Metrics;

/// <summary>
/// Per-prompt metric values from model outputs (spec B). Outputs are read at the task's positions first
/// (<see cref="ReadOutputs"/>): [B, P, V]. All arithmetic is in float64; softmaxes are over the whole vocabulary.
/// Values over several read positions (Tracr) are averaged per prompt.
/// </summary>
public static class FaithfulnessMetrics
{
    /// <summary>The outputs a task's metrics read: [B, 1, V] at the last position, or [B, T−1, V] after BOS.</summary>
    public static Tensor ReadOutputs(Tensor logits, ReadPositions read)
    {
        if (logits.dim() != 3) throw new ArgumentException($"Expected logits [batch, seq, vocab], got [{string.Join(", ", logits.shape)}].");
        return read == ReadPositions.Last ? logits[.., ^1..] : logits[.., 1..];
    }

    /// <summary>
    /// The metric for each prompt of the batch. <paramref name="circuit"/> and <paramref name="model"/> are read outputs
    /// [B, P, V] of the patched run and of the unpatched model on the clean prompts. <paramref name="modelMeanLogitDiff"/> is
    /// the mean logit difference of the unpatched model over the whole dataset, needed by
    /// <see cref="MetricKind.LogitDiffRecoveredOfMeans"/> only.
    /// </summary>
    public static double[] PerPrompt(MetricKind kind, Tensor circuit, Tensor model, MetricTargets targets, double? modelMeanLogitDiff = null)
    {
        using var scope = NewDisposeScope();
        if (!circuit.shape.SequenceEqual(model.shape))
            throw new ArgumentException($"Circuit outputs [{string.Join(", ", circuit.shape)}] and model outputs [{string.Join(", ", model.shape)}] differ in shape.");
        var y = circuit.to(ScalarType.Float64);
        var m = model.to(ScalarType.Float64);
        if (kind.NeedsTokenAnswers() && targets.Answers is null)
            throw new ArgumentException($"Metric '{kind.Name()}' needs token answers; this task has real-valued targets (use mse or kl).");
        if (kind.NeedsWrongAnswers() && (targets.WrongAnswers is null || targets.WrongAnswers.GetLength(2) == 0))
            throw new ArgumentException($"Metric '{kind.Name()}' needs wrong answers to compare with.");
        if (targets.Answers is not null && targets.Answers.GetLength(1) != y.shape[1])
            throw new ArgumentException($"The targets cover {targets.Answers.GetLength(1)} positions but the outputs {y.shape[1]}.");
        Tensor result = kind switch
        {
            MetricKind.LogitDiff => LogitDiff(y, targets),
            MetricKind.LogitDiffRecovered => (LogitDiff(y, targets) / LogitDiff(m, targets)).Times(100.0),
            MetricKind.LogitDiffRecoveredOfMeans => LogitDiff(y, targets).Times(100.0 / (modelMeanLogitDiff
                ?? throw new ArgumentException("The ratio of means needs the unpatched model's mean logit difference over the dataset."))),
            MetricKind.AnswerLogit => Gathered(y, targets.AnswerTensor(y.device)).mean(new long[] { 1 }),
            MetricKind.AnswerProb => Gathered(y.softmax(-1), targets.AnswerTensor(y.device)).mean(new long[] { 1 }),
            MetricKind.CorrectPercent => CorrectPercent(y, targets),
            MetricKind.CorrectVsCandidatesPercent => CorrectVsCandidates(y, targets),
            MetricKind.Kl => Kl(y, m),
            MetricKind.Mse => (y - m).Power(2).mean(new long[] { 1, 2 }),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return result.cpu().data<double>().ToArray();
    }

    /// <summary>Mean of f(y) over the ids at each position: [B, P].</summary>
    static Tensor Gathered(Tensor y, Tensor ids) => y.gather(-1, ids).mean(new long[] { -1 });

    /// <summary>Per prompt: mean over positions of (mean answer logit − mean wrong-answer logit) — a mean of differences.</summary>
    public static Tensor LogitDiff(Tensor y, MetricTargets targets) =>
        (Gathered(y, targets.AnswerTensor(y.device)) - Gathered(y, targets.WrongTensor(y.device))).mean(new long[] { 1 });

    static Tensor CorrectPercent(Tensor y, MetricTargets targets)
    {
        var answers = targets.AnswerTensor(y.device);
        if (answers.shape[2] != 1) throw new ArgumentException("correct-percent needs exactly one answer per prompt (use correct-vs-candidates-percent).");
        var correct = y.argmax(-1).eq(answers.squeeze(-1)).to(ScalarType.Float64);
        return correct.mean(new long[] { 1 }).Times(100.0);
    }

    // Ties resolve to the correct answer: argmax over [answer, other answers..., wrong answers...] returns the first maximum.
    static Tensor CorrectVsCandidates(Tensor y, MetricTargets targets)
    {
        var candidates = cat(new[] { targets.AnswerTensor(y.device), targets.WrongTensor(y.device) }, -1);
        var values = y.gather(-1, candidates);
        var others = values[.., .., 1..].amax(new long[] { -1 });
        var correct = values[.., .., 0].ge(others).to(ScalarType.Float64);
        return correct.mean(new long[] { 1 }).Times(100.0);
    }

    static Tensor Kl(Tensor y, Tensor m)
    {
        var target = m.log_softmax(-1);
        var circuit = y.log_softmax(-1);
        var kl = (target.exp() * (target - circuit)).sum(-1).mean(new long[] { 1 });
        return kl.clamp_min(0.0);
    }
}
