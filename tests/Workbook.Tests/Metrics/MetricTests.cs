using Workbook.Metrics;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Tests.Metrics;

/// <summary>Every metric against values computed by hand (spec B).</summary>
public class MetricTests
{
    // Two prompts, one read position, vocabulary of 4.
    static readonly double[,] CircuitLogits = { { 1, 3, 0, 2 }, { 2, 0, 1, 0 } };
    static readonly double[,] ModelLogits = { { 0, 2, 1, 1 }, { 0, 0, 4, 0 } };
    static readonly MetricTargets Targets = new(new long[,,] { { { 1 } }, { { 2 } } }, new long[,,] { { { 3 } }, { { 0 } } });

    static Tensor Outputs(double[,] logits) => tensor(logits).unsqueeze(1); // [B, 1, V]

    static double[] Run(MetricKind kind, double? meanModelLd = null) =>
        FaithfulnessMetrics.PerPrompt(kind, Outputs(CircuitLogits), Outputs(ModelLogits), Targets, meanModelLd);

    [Fact]
    public void LogitDifferencesAndRecoveredPercentages()
    {
        // Prompt 0: circuit 3 − 2 = 1, model 2 − 1 = 1. Prompt 1: circuit 1 − 2 = −1, model 4 − 0 = 4.
        Assert.Equal(new[] { 1.0, -1.0 }, Run(MetricKind.LogitDiff));
        Assert.Equal(new[] { 100.0, -25.0 }, Run(MetricKind.LogitDiffRecovered));
        // Ratio of means: per prompt 100 · LD_circuit / mean LD_model (2.5), so the mean is 100 · 0 / 2.5 = 0.
        Assert.Equal(new[] { 40.0, -40.0 }, Run(MetricKind.LogitDiffRecoveredOfMeans, meanModelLd: 2.5));
        Assert.Throws<ArgumentException>(() => Run(MetricKind.LogitDiffRecoveredOfMeans));
    }

    [Fact]
    public void AnswerLogitAndProbability()
    {
        Assert.Equal(new[] { 3.0, 1.0 }, Run(MetricKind.AnswerLogit));
        var prob = Run(MetricKind.AnswerProb);
        Assert.Equal(Math.Exp(3) / (Math.Exp(1) + Math.Exp(3) + Math.Exp(0) + Math.Exp(2)), prob[0], 12);
        Assert.Equal(Math.Exp(1) / (Math.Exp(2) + Math.Exp(0) + Math.Exp(1) + Math.Exp(0)), prob[1], 12);
    }

    [Fact]
    public void CorrectAnswerPercentages()
    {
        // Prompt 0: argmax 1 = answer; prompt 1: argmax 0 ≠ answer 2.
        Assert.Equal(new[] { 100.0, 0.0 }, Run(MetricKind.CorrectPercent));
        Assert.Equal(new[] { 100.0, 0.0 }, Run(MetricKind.CorrectVsCandidatesPercent));
        // Against the candidates only: token 0 (the largest logit overall) is not a candidate of prompt 0.
        var y = tensor(new double[,] { { 9, 3, 0, 2 } }).unsqueeze(1);
        var t = new MetricTargets(new long[,,] { { { 1 } } }, new long[,,] { { { 3, 2 } } });
        Assert.Equal(new[] { 0.0 }, FaithfulnessMetrics.PerPrompt(MetricKind.CorrectPercent, y, y, t));
        Assert.Equal(new[] { 100.0 }, FaithfulnessMetrics.PerPrompt(MetricKind.CorrectVsCandidatesPercent, y, y, t));
        // A tie with a wrong answer counts as correct (spec B).
        var tie = tensor(new double[,] { { 0, 2, 0, 2 } }).unsqueeze(1);
        Assert.Equal(new[] { 100.0 }, FaithfulnessMetrics.PerPrompt(MetricKind.CorrectVsCandidatesPercent, tie, tie, new MetricTargets(new long[,,] { { { 1 } } }, new long[,,] { { { 3 } } })));
    }

    [Fact]
    public void KlDivergenceAgreesWithTheDefinition()
    {
        var kl = Run(MetricKind.Kl);
        for (int b = 0; b < 2; b++)
        {
            double Z(double[,] l) => Enumerable.Range(0, 4).Sum(v => Math.Exp(l[b, v]));
            double expected = 0;
            for (int v = 0; v < 4; v++)
            {
                double p = Math.Exp(ModelLogits[b, v]) / Z(ModelLogits), q = Math.Exp(CircuitLogits[b, v]) / Z(CircuitLogits);
                expected += p * Math.Log(p / q);
            }
            Assert.Equal(expected, kl[b], 12);
        }
        Assert.Equal(new[] { 0.0, 0.0 }, FaithfulnessMetrics.PerPrompt(MetricKind.Kl, Outputs(ModelLogits), Outputs(ModelLogits), Targets));
    }

    [Fact]
    public void MeanSquaredError()
    {
        // Prompt 0: (1 + 1 + 1 + 1) / 4; prompt 1: (4 + 0 + 9 + 0) / 4.
        Assert.Equal(new[] { 1.0, 3.25 }, Run(MetricKind.Mse));
    }

    [Fact]
    public void SeveralAnswersAndPositionsAreAveraged()
    {
        // One prompt, two read positions (like Tracr), two answers and one wrong answer per position.
        var y = tensor(new double[,,] { { { 1, 2, 3 }, { 4, 0, 1 } } });
        var t = new MetricTargets(new long[,,] { { { 0, 1 }, { 0, 2 } } }, new long[,,] { { { 2 }, { 1 } } });
        // Position 0: (1 + 2) / 2 − 3 = −1.5; position 1: (4 + 1) / 2 − 0 = 2.5; mean 0.5.
        Assert.Equal(new[] { 0.5 }, FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiff, y, y, t));
        Assert.Equal(new[] { (1.5 + 2.5) / 2 }, FaithfulnessMetrics.PerPrompt(MetricKind.AnswerLogit, y, y, t));
    }

    [Fact]
    public void TheTwoAggregationsDifferWhenTheModelsLogitDifferenceIsSmall()
    {
        // Spec B / F.10-11: the mean of per-prompt ratios is dominated by prompts where the model itself is unsure
        // (LD_model small); the ratio of means weighs prompts by their logit difference.
        var circuit = tensor(new double[,] { { 1, 0 }, { 10, 0 } }).unsqueeze(1); // LD_circuit = 1, 10
        var model = tensor(new double[,] { { 0.1, 0 }, { 10, 0 } }).unsqueeze(1);  // LD_model = 0.1, 10
        var t = new MetricTargets(new long[,,] { { { 0 } }, { { 0 } } }, new long[,,] { { { 1 } }, { { 1 } } });
        var ratios = FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiffRecovered, circuit, model, t);
        Assert.Equal(1000.0, ratios[0], 9);
        Assert.Equal(100.0, ratios[1], 9);
        Assert.Equal(550.0, ratios.Average(), 9);
        var ofMeans = FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiffRecoveredOfMeans, circuit, model, t, modelMeanLogitDiff: (0.1 + 10) / 2);
        Assert.Equal(100.0 * 5.5 / 5.05, ofMeans.Average(), 9);
    }

    [Fact]
    public void ReadOutputsPicksTheTasksPositions()
    {
        var logits = arange(2 * 6 * 3, dtype: ScalarType.Float64).reshape(2, 6, 3);
        var last = FaithfulnessMetrics.ReadOutputs(logits, ReadPositions.Last);
        Assert.Equal(new long[] { 2, 1, 3 }, last.shape);
        Assert.Equal(logits[1, 5, 2].item<double>(), last[1, 0, 2].item<double>());
        var after = FaithfulnessMetrics.ReadOutputs(logits, ReadPositions.AllButFirst);
        Assert.Equal(new long[] { 2, 5, 3 }, after.shape);
        Assert.Equal(logits[0, 1, 0].item<double>(), after[0, 0, 0].item<double>());
    }

    [Fact]
    public void MetricNamesRoundTripAndRealValuedTargetsAreRejected()
    {
        foreach (var metric in MetricKind.All) Assert.Same(metric, MetricKind.Parse(metric.Label.ToUpperInvariant()));
        Assert.Equal(9, MetricKind.All.Select(m => m.Label).Distinct().Count());
        Assert.Contains("'logit-diff'", Assert.Throws<ArgumentException>(() => MetricKind.Parse("logit-dif")).Message);
        var y = tensor(new double[,,] { { { 0.5 } } });
        Assert.Contains("real-valued", Assert.Throws<ArgumentException>(() => FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiff, y, y, new MetricTargets(null, null))).Message);
        Assert.Equal(new[] { 0.0 }, FaithfulnessMetrics.PerPrompt(MetricKind.Mse, y, y, new MetricTargets(null, null)));
    }
}
