using System.Globalization;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Workshop;

/// <summary>A wrong answer that is recognisably one mistake, and the hint that names it.</summary>
public sealed record Mistake<T>(T Value, string Hint);

/// <summary>
/// The comparisons behind every exercise's check: an answer (null while the stub is untouched) against the value the
/// library computes, then against the values that known mistakes produce, each with its own hint. The exercises'
/// classes (one per notebook) compute the expected value and the mistakes; this class only compares.
/// </summary>
public static class Check
{
    /// <summary>Within <paramref name="tolerance"/> relative to the larger of 1 and |expected|.</summary>
    public static bool Close(double answer, double expected, double tolerance) =>
        Math.Abs(answer - expected) <= tolerance * Math.Max(1.0, Math.Abs(expected));

    public static CheckResult Number(string exercise, double? answer, double expected, string what, double tolerance, string otherwise,
        params Mistake<double>[] mistakes)
    {
        if (answer is not double a) return CheckResult.NotDone(exercise, $"set {what} (it is still null)");
        if (double.IsNaN(a) || double.IsInfinity(a)) return CheckResult.Fail(exercise, $"{what} is {a.ToString(CultureInfo.InvariantCulture)}; a finite number is expected. Look for a division by zero or a log of zero.");
        if (Close(a, expected, tolerance)) return CheckResult.Pass(exercise, $"{what} = {Format(a)} (expected {Format(expected)}).");
        foreach (var m in mistakes)
            if (Close(a, m.Value, tolerance)) return CheckResult.Fail(exercise, $"{what} = {Format(a)}. {m.Hint}");
        return CheckResult.Fail(exercise, $"{what} = {Format(a)}, but {Format(expected)} was expected. {otherwise}");
    }

    public static CheckResult Tensor(string exercise, Tensor? answer, Tensor expected, string what, double tolerance, string otherwise,
        params Mistake<Tensor>[] mistakes)
    {
        if (answer is null) return CheckResult.NotDone(exercise, $"set {what} (it is still null)");
        if (!answer.shape.SequenceEqual(expected.shape))
            return CheckResult.Fail(exercise, $"{what} has shape {Shape(answer)}, but {Shape(expected)} was expected. Check which dimensions you indexed or summed away.");
        using var scope = NewDisposeScope();
        var a = answer.detach().to(expected.device).to_type(expected.dtype);
        if (a.isnan().any().item<bool>()) return CheckResult.Fail(exercise, $"{what} contains NaN.");
        if (MaxDifference(a, expected) <= tolerance * Math.Max(1.0, expected.abs().max().item<float>()))
            return CheckResult.Pass(exercise, $"{what}: equal within tolerance (largest difference {Format(MaxDifference(a, expected))}).");
        foreach (var m in mistakes)
            if (m.Value.shape.SequenceEqual(expected.shape) && MaxDifference(a, m.Value.to(expected.device)) <= tolerance * Math.Max(1.0, m.Value.abs().max().item<float>()))
                return CheckResult.Fail(exercise, $"{what}: not right yet. {m.Hint}");
        return CheckResult.Fail(exercise, $"{what} differs from the expected values by up to {Format(MaxDifference(a, expected))}. {otherwise}");
    }

    /// <summary>Names every choice that differs from the one asked for (in the methodology's own words).</summary>
    public static CheckResult Methodology(string exercise, Methodology? answer, Methodology expected, string what)
    {
        if (answer is null) return CheckResult.NotDone(exercise, $"build {what} (it is still null)");
        var differences = new List<string>();
        void Compare<T>(string choice, T yours, T wanted, Func<T, string> word)
        {
            if (!EqualityComparer<T>.Default.Equals(yours, wanted)) differences.Add($"{choice} is {word(yours)}, the exercise asks for {word(wanted)}");
        }
        Compare("the component", answer.Component, expected.Component, c => Patching.Methodology.Components[c]);
        Compare("the token positions", answer.Positions, expected.Positions, p => Patching.Methodology.PositionChoices[p]);
        Compare("the ablation value", answer.Value.Label, expected.Value.Label, v => v);
        Compare("the direction", answer.Direction, expected.Direction, d => Patching.Methodology.Directions[d]);
        Compare("the ablated set", answer.Ablate, expected.Ablate, s => Patching.Methodology.Sets[s]);
        Compare("the granularity", answer.Granularity, expected.Granularity, g => Patching.Methodology.Granularities[g]);
        Compare("the never-patched prefix", answer.NeverPatchedPrefix, expected.NeverPatchedPrefix, p => p?.ToString(CultureInfo.InvariantCulture) ?? "the task's (null)");
        return differences.Count == 0
            ? CheckResult.Pass(exercise, $"{what} is {answer.Label}.")
            : CheckResult.Fail(exercise, $"{what} is {answer.Label}: {string.Join("; ", differences)}.");
    }

    static double MaxDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    public static string Format(double v) => v.ToString(Math.Abs(v) >= 1000 || (Math.Abs(v) < 0.01 && v != 0) ? "G3" : "F3", CultureInfo.InvariantCulture);
}
