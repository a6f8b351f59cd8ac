using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Tests.Evaluation;

public class StatisticsTests
{
    [Fact]
    public void QuantilesInterpolateLinearly()
    {
        // numpy.percentile([1, 2, 3, 4], q) with linear interpolation: h = (n − 1)·q.
        var v = new[] { 1.0, 2, 3, 4 };
        Assert.Equal(2.5, Statistics.Median(v));
        Assert.Equal(1.75, Statistics.Quantile(v, 0.25));
        Assert.Equal(3.25, Statistics.Quantile(v, 0.75));
        Assert.Equal(1.15, Statistics.Quantile(v, 0.05), 12);
        Assert.Equal(3.85, Statistics.Quantile(v, 0.95), 12);
    }

    [Fact]
    public void SummaryCountsShareWithinBandAndExcludesNonFinite()
    {
        var s = Statistics.Summarize(new[] { 50.0, 85, 100, 119, 130, double.PositiveInfinity, double.NaN }, seed: 1);
        Assert.Equal(7, s.Count);
        Assert.Equal(2, s.NonFinite);
        Assert.Equal(100, s.Median);
        Assert.Equal(96.8, s.Mean, 12);
        Assert.Equal(0.6, s.ShareWithin80To120, 12);
        Assert.Equal(50, s.Min);
        Assert.Equal(130, s.Max);
        Assert.InRange(s.Mean, s.MeanCi.Low, s.MeanCi.High);
        Assert.True(s.MedianCi.Low >= 50 && s.MedianCi.High <= 130);
    }

    [Fact]
    public void BootstrapIsDeterministicPerSeedAndShrinksWithMoreData()
    {
        var rng = new Random(3);
        var small = Enumerable.Range(0, 20).Select(_ => rng.NextDouble() * 100).ToArray();
        var large = Enumerable.Range(0, 2000).Select(_ => rng.NextDouble() * 100).ToArray();
        Assert.Equal(Statistics.Bootstrap(small, 5), Statistics.Bootstrap(small, 5));
        Assert.NotEqual(Statistics.Bootstrap(small, 5), Statistics.Bootstrap(small, 6));
        var (smallMean, _) = Statistics.Bootstrap(small, 0);
        var (largeMean, _) = Statistics.Bootstrap(large, 0);
        Assert.True(largeMean.High - largeMean.Low < smallMean.High - smallMean.Low);
        // A constant sample has a zero-width interval.
        Assert.Equal(new Interval(7, 7), Statistics.Bootstrap(Enumerable.Repeat(7.0, 30).ToArray(), 0).Median);
    }

    [Fact]
    public void SignTestMatchesTheBinomial()
    {
        // 9 of 10 positive: 2·(C(10,0) + C(10,1)) / 2^10 = 22/1024.
        Assert.Equal(22.0 / 1024, Statistics.SignTest(9, 1), 12);
        Assert.Equal(1.0, Statistics.SignTest(5, 5));
        Assert.Equal(1.0, Statistics.SignTest(0, 0));
        Assert.Equal(2.0 / 1024, Statistics.SignTest(0, 10), 12);
    }

    [Fact]
    public void WilcoxonExactAndApproximate()
    {
        // Five positive differences: W+ = 15, exact two-sided p = 2/32.
        var (w, p, exact) = Statistics.WilcoxonSignedRank(new[] { 1.0, 2, 3, 4, 5 });
        Assert.Equal(15, w);
        Assert.True(exact);
        Assert.Equal(2.0 / 32, p, 12);
        // n = 4 with ranks {1, 2, 3, 4}, one negative of rank 1: W+ = 9; P(W+ ≥ 9) = P(W+ ≤ 1) = 2/16, two-sided 4/16.
        Assert.Equal(0.25, Statistics.WilcoxonSignedRank(new[] { -1.0, 2, 3, 4 }).P, 12);
        // Ties: normal approximation with the tie correction, compared with the formula written out here.
        var d = new[] { 1.0, 1, 2, -2, 3, 3, 3, 4, -5, 6 };
        // |d| ranks: 1,1 → 1.5; 2,2 → 3.5; 3,3,3 → 6; 4 → 8; 5 → 9; 6 → 10. W+ = 1.5+1.5+3.5+6·3+8+10 = 42.5.
        var approx = Statistics.WilcoxonSignedRank(d);
        Assert.False(approx.Exact);
        Assert.Equal(42.5, approx.W);
        double n = 10, mean = n * (n + 1) / 4, variance = n * (n + 1) * (2 * n + 1) / 24 - (6 + 6 + 24) / 48.0;
        double z = (42.5 - mean) / Math.Sqrt(variance);
        Assert.Equal(Statistics.Erfc(z / Math.Sqrt(2)), approx.P, 12);
        // erfc spot values: erfc(0) = 1, erfc(1) = 0.157299207050285, erfc(−1) = 1.842700792949715.
        Assert.Equal(1.0, Statistics.Erfc(0), 6);
        Assert.Equal(0.157299207050285, Statistics.Erfc(1), 6);
        Assert.Equal(1.842700792949715, Statistics.Erfc(-1), 6);
    }

    [Fact]
    public void PairedComparisonMatchesPromptsAcrossParts()
    {
        var a = new Methodology();
        var b = new Methodology { Value = AblationValue.Zero };
        var rows = new List<EvaluationRow>();
        for (int i = 0; i < 6; i++)
        {
            rows.Add(new EvaluationRow("t", i < 3 ? "p1" : "p2", i % 3, a, MetricKind.LogitDiff, 10 + i));
            rows.Add(new EvaluationRow("t", i < 3 ? "p1" : "p2", i % 3, b, MetricKind.LogitDiff, i == 5 ? 20 : 10));
        }
        rows.Reverse(); // order must not matter
        var c = Summaries.Compare(rows, a, b, MetricKind.LogitDiff);
        // Differences 0, 1, 2, 3, 4, −5 (prompt 5: 15 − 20).
        Assert.Equal(6, c.Count);
        Assert.Equal(4, c.Positive);
        Assert.Equal(1, c.Negative);
        Assert.Equal(1, c.Ties);
        Assert.Equal(1.5, c.MedianDifference);
        Assert.Equal(5.0 / 6, c.MeanDifference, 12);
        Assert.Equal(Statistics.SignTest(4, 1), c.SignTestP);
        Assert.Throws<ArgumentException>(() => Summaries.Compare(rows, a, new Methodology { Value = AblationValue.Mean(MeanOver.Clean) }, MetricKind.LogitDiff));
    }
}
