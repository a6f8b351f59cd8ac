using Workbook.Randomness;

namespace Workbook.Evaluation;

/// <summary>A two-sided interval, e.g. a bootstrap 95 % confidence interval.</summary>
public sealed record Interval(double Low, double High)
{
    public override string ToString() => $"[{Low:G4}, {High:G4}]";
}

/// <summary>Descriptive statistics of per-prompt values, with seeded bootstrap intervals of the mean and median.</summary>
public sealed record DistributionSummary
{
    public required int Count { get; init; }
    /// <summary>Values that were NaN or infinite (a logit-difference ratio with a zero denominator); excluded from the statistics.</summary>
    public int NonFinite { get; init; }
    public required double Mean { get; init; }
    public required double Median { get; init; }
    public required double Q1 { get; init; }
    public required double Q3 { get; init; }
    public required double P5 { get; init; }
    public required double P95 { get; init; }
    public required double Min { get; init; }
    public required double Max { get; init; }
    public required double StdDev { get; init; }
    /// <summary>Share of prompts (0..1) whose value lies in [80, 100 + 20] — "faithful" per prompt, for percentage metrics.</summary>
    public required double ShareWithin80To120 { get; init; }
    public required Interval MeanCi { get; init; }
    public required Interval MedianCi { get; init; }
    public double Iqr => Q3 - Q1;
}

/// <summary>Two methodologies compared prompt by prompt (difference = A − B).</summary>
public sealed record PairedComparison
{
    public required string A { get; init; }
    public required string B { get; init; }
    public required int Count { get; init; }
    public required double MeanDifference { get; init; }
    public required double MedianDifference { get; init; }
    public required Interval MedianDifferenceCi { get; init; }
    public required int Positive { get; init; }
    public required int Negative { get; init; }
    public required int Ties { get; init; }
    /// <summary>Two-sided exact sign test (binomial, p = 1/2) on the nonzero differences.</summary>
    public required double SignTestP { get; init; }
    /// <summary>Wilcoxon signed-rank statistic W+ (sum of the ranks of positive differences; zeros dropped, ties averaged).</summary>
    public required double WilcoxonW { get; init; }
    /// <summary>Two-sided Wilcoxon p-value: exact for up to 50 untied nonzero differences, normal approximation (tie-corrected) otherwise.</summary>
    public required double WilcoxonP { get; init; }
    public required bool WilcoxonExact { get; init; }
}

/// <summary>
/// Statistics on per-prompt values. Quantiles interpolate linearly between order statistics (numpy's default,
/// Hyndman–Fan type 7). Bootstrap intervals are percentile intervals from <c>resamples</c> resamples drawn with a
/// seeded Mersenne Twister, so the same values and seed give the same interval on every machine.
/// </summary>
public static class Statistics
{
    public const int DefaultResamples = 1000;

    public static double Quantile(double[] sorted, double q)
    {
        if (sorted.Length == 0) return double.NaN;
        double h = (sorted.Length - 1) * q;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    public static double Median(double[] sorted) => Quantile(sorted, 0.5);

    public static DistributionSummary Summarize(IEnumerable<double> values, int seed = 0, int resamples = DefaultResamples)
    {
        var all = values.ToArray();
        var finite = all.Where(double.IsFinite).ToArray();
        Array.Sort(finite);
        int n = finite.Length;
        double mean = n == 0 ? double.NaN : finite.Average();
        double sd = n < 2 ? 0 : Math.Sqrt(finite.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        var (meanCi, medianCi) = Bootstrap(finite, seed, resamples);
        return new DistributionSummary
        {
            Count = all.Length, NonFinite = all.Length - n, Mean = mean, Median = Median(finite),
            Q1 = Quantile(finite, 0.25), Q3 = Quantile(finite, 0.75), P5 = Quantile(finite, 0.05), P95 = Quantile(finite, 0.95),
            Min = n == 0 ? double.NaN : finite[0], Max = n == 0 ? double.NaN : finite[^1], StdDev = sd,
            ShareWithin80To120 = n == 0 ? double.NaN : finite.Count(v => v >= 80 && v <= 120) / (double)n,
            MeanCi = meanCi, MedianCi = medianCi,
        };
    }

    /// <summary>Percentile bootstrap 95 % intervals of the mean and of the median.</summary>
    public static (Interval Mean, Interval Median) Bootstrap(double[] values, int seed, int resamples = DefaultResamples)
    {
        if (values.Length == 0) return (new Interval(double.NaN, double.NaN), new Interval(double.NaN, double.NaN));
        if (resamples < 1) throw new ArgumentException($"Bootstrap resamples must be at least 1, got {resamples}.");
        var rng = new PythonRandom(seed);
        var means = new double[resamples];
        var medians = new double[resamples];
        var sample = new double[values.Length];
        for (int r = 0; r < resamples; r++)
        {
            double sum = 0;
            for (int i = 0; i < sample.Length; i++)
            {
                sample[i] = values[rng.RandBelow(values.Length)];
                sum += sample[i];
            }
            means[r] = sum / sample.Length;
            Array.Sort(sample);
            medians[r] = Median(sample);
        }
        Array.Sort(means);
        Array.Sort(medians);
        return (new Interval(Quantile(means, 0.025), Quantile(means, 0.975)), new Interval(Quantile(medians, 0.025), Quantile(medians, 0.975)));
    }

    /// <summary>Compares paired values (same prompts in the same order): differences a[i] − b[i].</summary>
    public static PairedComparison Compare(string nameA, IReadOnlyList<double> a, string nameB, IReadOnlyList<double> b, int seed = 0, int resamples = DefaultResamples)
    {
        if (a.Count != b.Count) throw new ArgumentException($"Paired comparison needs the same prompts: {a.Count} vs {b.Count} values.");
        var diffs = a.Zip(b, (x, y) => x - y).Where(double.IsFinite).ToArray();
        var sorted = diffs.OrderBy(d => d).ToArray();
        int pos = diffs.Count(d => d > 0), neg = diffs.Count(d => d < 0);
        var (w, p, exact) = WilcoxonSignedRank(diffs);
        return new PairedComparison
        {
            A = nameA, B = nameB, Count = diffs.Length,
            MeanDifference = diffs.Length == 0 ? double.NaN : diffs.Average(), MedianDifference = Median(sorted),
            MedianDifferenceCi = Bootstrap(diffs, seed, resamples).Median,
            Positive = pos, Negative = neg, Ties = diffs.Length - pos - neg,
            SignTestP = SignTest(pos, neg), WilcoxonW = w, WilcoxonP = p, WilcoxonExact = exact,
        };
    }

    /// <summary>Two-sided exact sign test: 2 · P(X ≤ min(k, n − k)) for X ~ Binomial(n, 1/2), capped at 1.</summary>
    public static double SignTest(int positive, int negative)
    {
        int n = positive + negative;
        if (n == 0) return 1.0;
        int k = Math.Min(positive, negative);
        // Sum in log space: C(n, i) / 2^n.
        double logHalfN = -n * Math.Log(2);
        double total = 0;
        for (int i = 0; i <= k; i++) total += Math.Exp(LogChoose(n, i) + logHalfN);
        return Math.Min(1.0, 2 * total);
    }

    static double LogChoose(int n, int k) => LogFactorial(n) - LogFactorial(k) - LogFactorial(n - k);

    static double LogFactorial(int n)
    {
        double s = 0;
        for (int i = 2; i <= n; i++) s += Math.Log(i);
        return s;
    }

    /// <summary>Wilcoxon signed-rank test on differences: (W+, two-sided p, exact?).</summary>
    public static (double W, double P, bool Exact) WilcoxonSignedRank(IReadOnlyList<double> differences)
    {
        var nonzero = differences.Where(d => d != 0 && double.IsFinite(d)).ToArray();
        int n = nonzero.Length;
        if (n == 0) return (0, 1.0, true);
        var order = Enumerable.Range(0, n).OrderBy(i => Math.Abs(nonzero[i])).ToArray();
        var ranks = new double[n];
        double tieCorrection = 0;
        bool ties = false;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && Math.Abs(nonzero[order[j + 1]]) == Math.Abs(nonzero[order[i]])) j++;
            double rank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) ranks[order[k]] = rank;
            int t = j - i + 1;
            if (t > 1)
            {
                ties = true;
                tieCorrection += (double)t * t * t - t;
            }
            i = j + 1;
        }
        double wPlus = 0;
        for (int i = 0; i < n; i++) if (nonzero[i] > 0) wPlus += ranks[i];
        if (!ties && n <= 50)
        {
            // Exact null distribution of W+ by counting subsets of {1..n} with each rank sum.
            int max = n * (n + 1) / 2;
            var counts = new double[max + 1];
            counts[0] = 1;
            for (int r = 1; r <= n; r++)
                for (int s = max; s >= r; s--) counts[s] += counts[s - r];
            double totalWays = Math.Pow(2, n);
            int w = (int)Math.Round(wPlus);
            int lower = Math.Min(w, max - w);
            double tail = 0;
            for (int s = 0; s <= lower; s++) tail += counts[s];
            return (wPlus, Math.Min(1.0, 2 * tail / totalWays), true);
        }
        double mean = n * (n + 1) / 4.0;
        double variance = n * (n + 1) * (2 * n + 1) / 24.0 - tieCorrection / 48.0;
        if (variance <= 0) return (wPlus, 1.0, false);
        double z = (wPlus - mean) / Math.Sqrt(variance);
        return (wPlus, Math.Min(1.0, Erfc(Math.Abs(z) / Math.Sqrt(2))), false);
    }

    /// <summary>The complementary error function (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7).</summary>
    public static double Erfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
            t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2.0 - r;
    }
}
