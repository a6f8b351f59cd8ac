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
    /// the mean logit difference of the unpatched model over the whole dataset, for metrics that need it
    /// (<see cref="MetricNeeds.ModelMeanLogitDiff"/>).
    /// </summary>
    public static double[] PerPrompt(MetricKind kind, Tensor circuit, Tensor model, MetricTargets targets, double? modelMeanLogitDiff = null)
    {
        using var scope = NewDisposeScope();
        if (!circuit.shape.SequenceEqual(model.shape))
            throw new ArgumentException($"Circuit outputs [{string.Join(", ", circuit.shape)}] and model outputs [{string.Join(", ", model.shape)}] differ in shape.");
        if (kind.Needs.HasFlag(MetricNeeds.TokenAnswers) && targets.Answers is null)
            throw new ArgumentException($"Metric '{kind.Label}' needs token answers; this task has real-valued targets (use mse or kl).");
        if (kind.Needs.HasFlag(MetricNeeds.WrongAnswers) && (targets.WrongAnswers is null || targets.WrongAnswers.GetLength(2) == 0))
            throw new ArgumentException($"Metric '{kind.Label}' needs wrong answers to compare with.");
        if (targets.Answers is not null && targets.Answers.GetLength(1) != circuit.shape[1])
            throw new ArgumentException($"The targets cover {targets.Answers.GetLength(1)} positions but the outputs {circuit.shape[1]}.");
        var result = kind.Compute(new MetricInputs(circuit.to(ScalarType.Float64), model.to(ScalarType.Float64), targets, modelMeanLogitDiff));
        return result.cpu().data<double>().ToArray();
    }

    /// <summary>Mean of y over the ids at each position: [B, P].</summary>
    public static Tensor Gathered(Tensor y, Tensor ids) => y.gather(-1, ids).mean(new long[] { -1 });

    /// <summary>Per prompt: mean over positions of (mean answer logit − mean wrong-answer logit) — a mean of differences.</summary>
    public static Tensor LogitDiff(Tensor y, MetricTargets targets) =>
        (Gathered(y, targets.AnswerTensor(y.device)) - Gathered(y, targets.WrongTensor(y.device))).mean(new long[] { 1 });
}
