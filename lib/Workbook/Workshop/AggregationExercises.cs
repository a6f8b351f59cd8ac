using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Workshop;

/// <summary>One prompt's logit differences (answer − wrong answer): with the circuit alone (patched) and with the full model.</summary>
public sealed record PromptLogitDiffs(string Part, int Prompt, double Circuit, double Model)
{
    /// <summary>100 · LD_circuit / LD_model: this prompt's logit difference recovered.</summary>
    public double RecoveredPercent => 100 * Circuit / Model;
}

/// <summary>
/// Notebook 4 (metrics and aggregation): per-prompt logit differences from an evaluation, the two ways of averaging
/// them, and the checks of its exercises (ratio of means by hand, KL divergence from two logit vectors, the prompt that
/// dominates the mean of ratios). Expected values are computed here in plain doubles, not with the metrics' tensors.
/// </summary>
public static class AggregationExercises
{
    /// <summary>
    /// The circuit's and the model's logit difference for every prompt of <paramref name="result"/> under
    /// <paramref name="methodology"/> (the evaluation must include <see cref="MetricKind.LogitDiff"/>), in part and prompt order.
    /// </summary>
    public static IReadOnlyList<PromptLogitDiffs> PerPrompt(EvaluationResult result, Methodology methodology)
    {
        var model = result.FullModel.Where(r => r.Metric == MetricKind.LogitDiff).ToDictionary(r => (r.Part, r.Prompt), r => r.Value);
        var rows = result.Rows.Where(r => r.Metric == MetricKind.LogitDiff && r.Methodology == methodology).ToList();
        if (rows.Count == 0) throw new ArgumentException($"The evaluation has no logit-difference rows for {methodology.Label}: include MetricKind.LogitDiff and that methodology.");
        return rows.Select(r => new PromptLogitDiffs(r.Part, r.Prompt, r.Value,
                model.TryGetValue((r.Part, r.Prompt), out double m) ? m : throw new ArgumentException($"No full-model logit difference for {r.Part} prompt {r.Prompt}.")))
            .ToList();
    }

    /// <summary>"Average [Logit Diff %]": the mean over prompts of 100 · LD_circuit / LD_model.</summary>
    public static double MeanOfRatios(IReadOnlyList<PromptLogitDiffs> prompts) => NonEmpty(prompts).Average(p => p.RecoveredPercent);

    /// <summary>"[Average Logit Diff] %" (Wang et al.): 100 · mean LD_circuit / mean LD_model over all prompts.</summary>
    public static double RatioOfMeans(IReadOnlyList<PromptLogitDiffs> prompts) =>
        100 * NonEmpty(prompts).Average(p => p.Circuit) / prompts.Average(p => p.Model);

    /// <summary>
    /// The index of the prompt whose removal moves the mean of ratios most: the one whose ratio lies furthest from the
    /// mean (removing prompt i moves the mean by (mean − rᵢ)/(n − 1)).
    /// </summary>
    public static int DominantPrompt(IReadOnlyList<PromptLogitDiffs> prompts)
    {
        double mean = MeanOfRatios(prompts);
        return Enumerable.Range(0, prompts.Count).MaxBy(i => Math.Abs(prompts[i].RecoveredPercent - mean));
    }

    /// <summary>KL(P ‖ Q) in nats of the softmax distributions of two logit vectors, in doubles: Σ P log(P / Q).</summary>
    public static double KlDivergence(IReadOnlyList<double> modelLogits, IReadOnlyList<double> circuitLogits)
    {
        if (modelLogits.Count != circuitLogits.Count || modelLogits.Count == 0)
            throw new ArgumentException($"Two logit vectors of the same non-zero length are needed, got {modelLogits.Count} and {circuitLogits.Count}.");
        var logP = LogSoftmax(modelLogits);
        var logQ = LogSoftmax(circuitLogits);
        double kl = 0;
        for (int i = 0; i < logP.Length; i++) kl += Math.Exp(logP[i]) * (logP[i] - logQ[i]);
        return kl;
    }

    static double[] LogSoftmax(IReadOnlyList<double> logits)
    {
        double max = logits.Max();
        double logSum = max + Math.Log(logits.Sum(x => Math.Exp(x - max)));
        return logits.Select(x => x - logSum).ToArray();
    }

    /// <summary>Exercise 4.1: Wang et al.'s ratio of means, by hand, over every prompt of <paramref name="prompts"/>.</summary>
    public static CheckResult RatioOfMeansByHand(IReadOnlyList<PromptLogitDiffs> prompts, double? answer)
    {
        double perPart = prompts.GroupBy(p => p.Part).Average(g => RatioOfMeans(g.ToList()));
        return Check.Number("4.1", answer, RatioOfMeans(prompts), "ratioOfMeans", 1e-4,
            "Average the circuit's logit differences, average the model's, divide, and multiply by 100.",
            new(MeanOfRatios(prompts), "That is the mean of the per-prompt ratios (the other aggregation). Average first, then divide once."),
            new(RatioOfMeans(prompts) / 100, "The value is a fraction; the exercise asks for a percentage (× 100)."),
            new(100 * prompts.Average(p => p.Model) / prompts.Average(p => p.Circuit), "The ratio is upside down: the circuit's mean goes on top, the model's below."),
            new(100 * prompts.Sum(p => p.Circuit) / prompts.Count, "That is 100 · mean LD_circuit alone; divide by the model's mean logit difference."),
            new(perPart, "You averaged the ratio of means of each part; the exercise pools every prompt of the list."));
    }

    /// <summary>
    /// Exercise 4.3: KL(model ‖ circuit) of the output distributions at one position, from the two logit vectors
    /// (<paramref name="modelLogits"/>, <paramref name="circuitLogits"/>: [vocabulary]).
    /// </summary>
    public static CheckResult KlByHand(Tensor modelLogits, Tensor circuitLogits, double? answer)
    {
        var p = Values(modelLogits);
        var q = Values(circuitLogits);
        double kl = KlDivergence(p, q);
        double logitsAsLogs = 0;
        var probabilities = Softmax(p);
        for (int i = 0; i < p.Length; i++) logitsAsLogs += probabilities[i] * (p[i] - q[i]);
        return Check.Number("4.3", answer, kl, "kl", 1e-3,
            "KL(model ‖ circuit) = Σ_v P(v) · (log P(v) − log Q(v)), with P = softmax(model logits), Q = softmax(circuit logits); use log_softmax for the logs.",
            new(KlDivergence(q, p), "That is KL(circuit ‖ model): the direction is reversed. Weight by the model's probabilities P and subtract log Q from log P."),
            new(logitsAsLogs, "You used the raw logits in place of log-probabilities: take log_softmax of both first (logits are only defined up to a constant)."),
            new(kl / p.Length, "You averaged over the vocabulary; KL sums over it (.sum(), not .mean())."),
            new(kl / Math.Log(2), "That is KL in bits (log base 2); the workbook uses natural logarithms (nats)."),
            new(-kl, "The sign is flipped: KL is Σ P (log P − log Q), never negative."));
    }

    /// <summary>Exercise 4.2: the index (in <paramref name="prompts"/>) of the prompt whose removal moves the mean of ratios most.</summary>
    public static CheckResult DominantPromptByHand(IReadOnlyList<PromptLogitDiffs> prompts, int? answer)
    {
        int expected = DominantPrompt(prompts);
        if (answer is not int a) return CheckResult.NotDone("4.2", "set dominantPrompt (it is still null)");
        if (a < 0 || a >= prompts.Count) return CheckResult.Fail("4.2", $"dominantPrompt = {a} is not an index of prompts (0 to {prompts.Count - 1}).");
        double mean = MeanOfRatios(prompts);
        string Moves(int i) => $"removing it moves the mean of ratios by {Check.Format(Math.Abs(mean - prompts[i].RecoveredPercent) / (prompts.Count - 1))} points";
        if (a == expected || prompts[a].RecoveredPercent == prompts[expected].RecoveredPercent)
            return CheckResult.Pass("4.2", $"dominantPrompt = {a} ({prompts[a].Part} prompt {prompts[a].Prompt}, {Check.Format(prompts[a].RecoveredPercent)} %): {Moves(a)}.");
        int largestCircuit = Enumerable.Range(0, prompts.Count).MaxBy(i => prompts[i].Circuit);
        int smallestModel = Enumerable.Range(0, prompts.Count).MinBy(i => Math.Abs(prompts[i].Model));
        int largestRatio = Enumerable.Range(0, prompts.Count).MaxBy(i => prompts[i].RecoveredPercent);
        string hint =
            a == largestRatio ? "That is the largest ratio, but the one furthest from the mean may be a very negative or very small one: compare |ratio − mean|." :
            a == smallestModel ? "That prompt has the model's smallest logit difference (the smallest denominator); small denominators make large ratios, but here another prompt's ratio lies further from the mean." :
            a == largestCircuit ? "That is the prompt with the circuit's largest logit difference; the mean of ratios is moved by the ratio LD_circuit / LD_model, not by LD_circuit alone." :
            "Compute every prompt's ratio (p.RecoveredPercent), then the index whose |ratio − mean of ratios| is largest.";
        return CheckResult.Fail("4.2", $"dominantPrompt = {a}: {Moves(a)}, less than another prompt. {hint}");
    }

    static IReadOnlyList<PromptLogitDiffs> NonEmpty(IReadOnlyList<PromptLogitDiffs> prompts) =>
        prompts.Count > 0 ? prompts : throw new ArgumentException("No prompts to aggregate.");

    static double[] Values(Tensor logits)
    {
        if (logits.dim() != 1) throw new ArgumentException($"Expected one position's logits, shape [vocabulary]; got [{string.Join(", ", logits.shape)}].");
        using var scope = NewDisposeScope();
        return logits.detach().cpu().to_type(ScalarType.Float64).data<double>().ToArray();
    }

    static double[] Softmax(double[] logits)
    {
        double max = logits.Max();
        var e = logits.Select(x => Math.Exp(x - max)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }
}
