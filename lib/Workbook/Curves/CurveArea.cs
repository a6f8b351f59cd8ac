namespace Workbook.Curves;

/// <summary>
/// MIB's integrated faithfulness metrics (Mueller et al., 2025, "MIB: A Mechanistic Interpretability Benchmark") over a
/// faithfulness curve f(x), x = the fraction of the graph's edges kept:
/// <list type="bullet">
/// <item>CPR (circuit performance ratio, higher is better) = ∫ f(x) dx;</item>
/// <item>CMD (circuit–model distance, lower is better) = ∫ |1 − f(x)| dx;</item>
/// </list>
/// each by the trapezoidal rule on a linear x axis between the curve's points, as MIB's evaluation code does. One
/// deliberate difference: the area is divided by the x range the curve covers (x_last − x_first), so a curve that is
/// identically 1 has CPR exactly 1 and CMD exactly 0 whatever the grid. MIB's code integrates its fixed grid
/// 0.1 % .. 100 % without dividing (a perfect curve there scores 0.999); multiply by (x_last − x_first) to get its number.
/// </summary>
public static class CurveArea
{
    /// <summary>CPR and CMD of the points (x ascending, strictly; at least two points; finite values).</summary>
    public static (double Cpr, double Cmd) Areas(IReadOnlyList<double> x, IReadOnlyList<double> faithfulness)
    {
        if (x.Count != faithfulness.Count) throw new ArgumentException($"The curve has {x.Count} x values but {faithfulness.Count} faithfulness values.");
        if (x.Count < 2) throw new ArgumentException("A faithfulness curve needs at least two points to have an area.");
        for (int i = 0; i < x.Count; i++)
        {
            if (!double.IsFinite(x[i]) || !double.IsFinite(faithfulness[i]))
                throw new ArgumentException($"Point {i} of the curve is not finite (x = {x[i]}, faithfulness = {faithfulness[i]}).");
            if (i > 0 && !(x[i] > x[i - 1])) throw new ArgumentException($"The curve's x values must increase strictly; point {i} ({x[i]}) follows {x[i - 1]}.");
        }
        double under = 0, fromOne = 0;
        for (int i = 1; i < x.Count; i++)
        {
            double width = x[i] - x[i - 1];
            under += width * (faithfulness[i - 1] + faithfulness[i]) / 2;
            fromOne += width * (Math.Abs(1 - faithfulness[i - 1]) + Math.Abs(1 - faithfulness[i])) / 2;
        }
        double range = x[^1] - x[0];
        return (under / range, fromOne / range);
    }
}

/// <summary>Edge counts at which a curve is evaluated.</summary>
public static class CurveGrid
{
    /// <summary>MIB's fractions of the edges: 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50 and 100 %.</summary>
    public static IReadOnlyList<double> MibFractions { get; } = new[] { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0 };

    /// <summary>The most points a grid may have (each point is one evaluation over every prompt).</summary>
    public const int MaxPoints = 200;

    /// <summary>
    /// <paramref name="points"/> edge counts spaced evenly in log(count) from 1 to <paramref name="edgeCount"/>, rounded and
    /// made distinct (small graphs therefore get fewer points), always ending at every edge.
    /// </summary>
    public static IReadOnlyList<int> LogSpaced(int edgeCount, int points)
    {
        if (edgeCount < 1) throw new ArgumentException($"The graph has no edges ({edgeCount}).");
        if (points < 2 || points > MaxPoints) throw new ArgumentException($"A curve needs between 2 and {MaxPoints} points, got {points}.");
        var counts = new SortedSet<int>();
        for (int i = 0; i < points; i++)
            counts.Add((int)Math.Round(Math.Exp(Math.Log(edgeCount) * i / (points - 1))));
        counts.Add(edgeCount);
        return counts.ToArray();
    }

    /// <summary>MIB's grid on a graph of <paramref name="edgeCount"/> edges: ⌊fraction · edges⌋, at least 1, made distinct.</summary>
    public static IReadOnlyList<int> Mib(int edgeCount)
    {
        if (edgeCount < 1) throw new ArgumentException($"The graph has no edges ({edgeCount}).");
        return MibFractions.Select(f => Math.Max(1, (int)Math.Floor(f * edgeCount))).Distinct().OrderBy(c => c).ToArray();
    }
}
