using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Workshop;

/// <summary>
/// Notebook 6 (your own circuit): the checks of editing a circuit file (drop one edge), measuring what the edit
/// changes, and reading the robustness report's sensitivity factors.
/// </summary>
public static class CircuitFileExercises
{
    /// <summary><paramref name="circuit"/> without every edge <paramref name="source"/> → <paramref name="destination"/> (at any position).</summary>
    public static SymbolicCircuit WithoutEdge(SymbolicCircuit circuit, string source, string destination)
    {
        var kept = circuit.Edges.Where(e => !(e.Source == source && e.Destination == destination)).ToList();
        if (kept.Count == circuit.Edges.Count) throw new ArgumentException($"Circuit '{circuit.Name}' has no edge {source}->{destination}.");
        return new SymbolicCircuit($"{circuit.Name}-without-{source}-{destination}".Replace(' ', '-'), $"{circuit.Description}, without {source}->{destination}",
            circuit.View, circuit.SeparateQkv, kept);
    }

    /// <summary>Exercise 6.2: <paramref name="answer"/> is <paramref name="circuit"/> with the edge <paramref name="source"/> → <paramref name="destination"/> dropped, and nothing else changed.</summary>
    public static CheckResult DroppedEdge(SymbolicCircuit circuit, string source, string destination, SymbolicCircuit? answer)
    {
        const string exercise = "6.2";
        if (answer is null) return CheckResult.NotDone(exercise, "set withoutEdge (it is still null)");
        var expected = WithoutEdge(circuit, source, destination);
        if (answer.View != expected.View || answer.SeparateQkv != expected.SeparateQkv)
            return CheckResult.Fail(exercise, $"withoutEdge is a {Describe(answer)} circuit, the file's is {Describe(expected)}: keep \"component\" and \"separateQkv\" as they were.");
        var mine = answer.Edges.ToHashSet();
        var wanted = expected.Edges.ToHashSet();
        if (mine.SetEquals(wanted)) return CheckResult.Pass(exercise, $"withoutEdge keeps {answer.Edges.Count} of the {circuit.Edges.Count} edge-positions; {source}->{destination} is gone.");
        var missing = wanted.Except(mine).ToList();
        var extra = mine.Except(wanted).ToList();
        string hint =
            mine.SetEquals(circuit.Edges) ? $"withoutEdge is the original circuit: {source}->{destination} is still there. Did you parse the edited JSON (SymbolicCircuitJson.Read) after deleting the edge's object?" :
            extra.Count == 0 && wanted.Where(e => e.Source == source).ToHashSet().SetEquals(missing) ? $"You removed every edge out of {source} ({missing.Count} more than asked): that ablates the node, not the one edge." :
            extra.Count > 0 && extra.All(e => e.Source == source && e.Destination == destination) ? $"{source}->{destination} is still there (at {Position(extra[0])})" +
                (missing.Count > 0 ? $", and you removed {string.Join(", ", missing.Select(e => e.Name))} instead." : ".") :
            missing.Count > 0 && extra.Count > 0 && missing.Any(m => extra.Any(x => x.Name == m.Name)) ? $"The edge {missing.First(m => extra.Any(x => x.Name == m.Name)).Name} changed position; only delete, do not edit other edges." :
            missing.Count > 0 ? $"Also missing: {string.Join(", ", missing.Select(e => $"{e.Name} at {Position(e)}"))}; delete only {source}->{destination}." :
            $"Not in the file: {string.Join(", ", extra.Select(e => $"{e.Name} at {Position(e)}"))}.";
        return CheckResult.Fail(exercise, $"withoutEdge has {answer.Edges.Count} edge-positions. {hint}");
    }

    /// <summary>
    /// Exercise 6.3: the change of the median per-prompt logit difference recovered under <paramref name="methodology"/>
    /// when the edge is dropped (the smaller circuit's median minus the file's): the file's circuit as <paramref name="report"/>
    /// evaluated it, the smaller one evaluated here on the setup's prompts (the report's).
    /// </summary>
    public static CheckResult MedianChange(FigureSetup setup, RobustnessReport report, SymbolicCircuit circuit, string source, string destination, Methodology methodology, double? answer)
    {
        const string exercise = "6.3";
        if (answer is null) return CheckResult.NotDone(exercise, "set medianChange (it is still null)");
        // The report's rows are the file's circuit on the same prompts; only the smaller circuit is evaluated here.
        var full = report.Rows.Where(r => r.Methodology == methodology && r.Metric == MetricKind.LogitDiffRecovered).Select(r => r.Value).ToList();
        if (full.Count == 0) throw new ArgumentException($"The report has no {MetricKind.LogitDiffRecovered.Label} rows for {methodology.Label}.");
        var dropped = Evaluate(setup, WithoutEdge(circuit, source, destination), methodology);
        double Median(IReadOnlyList<double> v) => Statistics.Median(v.OrderBy(x => x).ToArray());
        double change = Median(dropped) - Median(full);
        return Check.Number(exercise, answer, change, "medianChange", 1e-3,
            $"Evaluate both circuits under {methodology.Label} with MetricKind.LogitDiffRecovered, take each one's median over prompts, and subtract the file's from the smaller circuit's.",
            new(-change, "The sign is reversed: the smaller circuit's median minus the original's (negative when dropping the edge hurts)."),
            new(dropped.Average() - full.Average(), "That is the change of the mean; the exercise asks for the median (a few prompts can drag a mean)."),
            new(Median(dropped), "That is the smaller circuit's median itself; subtract the original circuit's median."));
    }

    /// <summary>Exercise 6.1: the choice that moves the report's median most on average (its sensitivity factors, the ablated set aside).</summary>
    public static CheckResult MostInfluentialFactor(RobustnessReport report, string? answer)
    {
        const string exercise = "6.1";
        if (answer is null) return CheckResult.NotDone(exercise, "set mostInfluential (it is still null)");
        string expected = report.Sensitivity.MostInfluentialFactor ?? throw new ArgumentException("The report varies no choice, so no factor moves its median.");
        var factors = report.Sensitivity.Factors;
        string given = answer.Trim();
        if (string.Equals(given, expected, StringComparison.OrdinalIgnoreCase))
            return CheckResult.Pass(exercise, $"the {expected} moves the median by {Check.Format(factors.Single(f => f.Factor == expected).MeanShift)} points on average.");
        var named = factors.FirstOrDefault(f => string.Equals(f.Factor, given, StringComparison.OrdinalIgnoreCase));
        var largestSwitch = factors.Where(f => f.Factor != "ablated set").MaxBy(f => f.MaxShift);
        string hint =
            named is null ? $"'{given}' is not one of the report's factors: {string.Join(", ", factors.Select(f => $"\"{f.Factor}\""))}." :
            named.Factor == "ablated set" ? "The ablated set compares faithfulness with necessity (a different question), so it is left out; pick among the other factors." :
            named == largestSwitch ? $"The {named.Factor} has the largest single switch (max {Check.Format(named.MaxShift)}), but the question asks which moves the median most on average (the \"mean\" column)." :
            $"The {named.Factor} moves the median by {Check.Format(named.MeanShift)} points on average; another factor moves it more. Compare the \"mean\" column of the sensitivity lines.";
        return CheckResult.Fail(exercise, $"mostInfluential = \"{given}\". {hint}");
    }

    static IReadOnlyList<double> Evaluate(FigureSetup setup, SymbolicCircuit circuit, Methodology methodology) =>
        Evaluator.Run(setup.Request(new[] { methodology }, new[] { MetricKind.LogitDiffRecovered }, circuit: CircuitChoice.Of(circuit)))
            .Select(r => r.Value).ToList();

    static string Describe(SymbolicCircuit c) => $"{c.Component.ToString().ToLowerInvariant()}{(c.SeparateQkv ? " (Q, K, V separate)" : "")}";

    static string Position(SymbolicEdge e) => e.Position ?? "every position";
}
