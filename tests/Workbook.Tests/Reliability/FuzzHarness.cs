using System.Diagnostics;
using CsCheck;
using Xunit.Abstractions;

namespace Workbook.Tests.Reliability;

/// <summary>One generated input for a parser: a description for failure reports and the name the parser's errors must mention.</summary>
public sealed record FuzzCase<T>(T Input, string Description, params string[] MustName)
{
    public override string ToString() => Description;
}

/// <summary>
/// Runs a parser over generated inputs and fails on anything but a clean accept or a documented rejection.
/// A rejection must be one of the parser's documented exception types (or a subclass), with a non-empty message
/// that names the file, dataset or edge it is about (one of <see cref="FuzzCase{T}.MustName"/>). Any other exception
/// (NullReferenceException, IndexOutOfRangeException, OverflowException, OutOfMemoryException, ...) fails the test,
/// and so does a case slower than <see cref="PerCaseLimit"/> or a run that does not finish (a hang).
/// </summary>
public static class FuzzHarness
{
    /// <summary>Generated cases per parser: 10,000 by default, WORKBOOK_FUZZ_ITERATIONS to run more (or fewer).</summary>
    public static long Iterations =>
        long.TryParse(Environment.GetEnvironmentVariable("WORKBOOK_FUZZ_ITERATIONS"), out long n) && n > 0 ? n : 10_000;

    /// <summary>
    /// A single case taking longer than this counts as a hang. The slowest legitimate cases (a pickle of 2 M memo
    /// entries, at the unpickler's bound) take about half a second alone, but 10 s while every fuzzer ran at 100,000
    /// cases in parallel on two cores; the limit is wall time, so it leaves room for such load.
    /// </summary>
    public static TimeSpan PerCaseLimit { get; set; } = TimeSpan.FromSeconds(30);

    public sealed record Stats(string Parser, long Cases, long Accepted, IReadOnlyDictionary<string, long> Rejected, TimeSpan Elapsed)
    {
        public override string ToString() =>
            $"{Parser}: {Cases} cases in {Elapsed.TotalSeconds:0.0} s; accepted {Accepted}; rejected " +
            string.Join(", ", Rejected.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}"));
    }

    /// <summary>
    /// Which cases a run generates. Unset: the same cases on every run (base 0), so CI and a developer's machine test
    /// the same inputs and a red run is never luck. A number: another fixed set. <c>random</c>: a fresh base, printed,
    /// to explore; a failure names the base and case index that replay it.
    /// </summary>
    public static ulong SeedBase(out string shown)
    {
        string? text = Environment.GetEnvironmentVariable("WORKBOOK_FUZZ_SEED");
        ulong seedBase = string.Equals(text, "random", StringComparison.OrdinalIgnoreCase) ? RandomBase.Value
            : string.IsNullOrEmpty(text) ? 0
            : ulong.TryParse(text, out ulong n) ? n
            : throw new ArgumentException($"WORKBOOK_FUZZ_SEED must be a whole number from 0 to {ulong.MaxValue} or 'random', got '{text}'.");
        shown = seedBase.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return seedBase;
    }

    // One random base per test run, so every parser's report names the same number.
    static readonly Lazy<ulong> RandomBase = new(() => (ulong)Random.Shared.NextInt64(0, 1L << 40));

    /// <summary>A stable stream number per parser (FNV-1a of its name), so parsers do not all see the same random draws.</summary>
    static uint Stream(string parser)
    {
        uint h = 2166136261;
        foreach (char c in parser) h = (h ^ c) * 16777619;
        return h & 0x7fffffff;
    }

    /// <summary>SplitMix64's finalizer: neighbouring case numbers start far apart in the generator's state.</summary>
    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// A property checked on <paramref name="iterations"/> generated values, drawn as the fuzz cases are (the same on every
    /// run; WORKBOOK_FUZZ_SEED for others). A failure names the value and how to replay it.
    /// </summary>
    public static void ForAll<T>(string property, Gen<T> gen, long iterations, Action<T> check)
    {
        ulong seedBase = SeedBase(out string shownBase);
        uint stream = Stream(property);
        for (long i = 0; i < iterations; i++)
        {
            var value = gen.Generate(new PCG(stream, Mix(seedBase + (ulong)i)), null, out _);
            try
            {
                check(value);
            }
            catch (Exception e)
            {
                throw new FuzzFailure($"{property}: fails for {value} (case {i} of WORKBOOK_FUZZ_SEED={shownBase}): {e.Message}", e);
            }
        }
    }

    /// <summary>
    /// Generates <see cref="Iterations"/> cases (scaled by <paramref name="share"/>) from <paramref name="gen"/>, case i
    /// from its own generator state (the parser's stream, seed base + i), and runs <paramref name="parse"/> on each.
    /// <paramref name="documented"/> lists the exception types a rejection may throw.
    /// </summary>
    public static Stats Run<T>(string parser, Gen<FuzzCase<T>> gen, Action<T> parse, Type[] documented, ITestOutputHelper? output = null,
        double share = 1.0)
    {
        long iterations = Math.Max(1, (long)(Iterations * share));
        ulong seedBase = SeedBase(out string shownBase);
        uint stream = Stream(parser);
        long accepted = 0, cases = 0;
        var rejected = new Dictionary<string, long>();
        string? current = null;
        var stopwatch = Stopwatch.StartNew();
        var run = Task.Factory.StartNew(() =>
        {
            for (long i = 0; i < iterations; i++)
            {
                var c = gen.Generate(new PCG(stream, Mix(seedBase + (ulong)i)), null, out _);
                string replay = $"case {i} of WORKBOOK_FUZZ_SEED={shownBase}";
                Volatile.Write(ref current, $"{replay}: {c.Description}");
                var caseTime = Stopwatch.StartNew();
                Exception? thrown = null;
                try
                {
                    parse(c.Input);
                }
                catch (Exception e)
                {
                    thrown = e;
                }
                caseTime.Stop();
                cases++;
                if (caseTime.Elapsed > PerCaseLimit)
                    throw new FuzzFailure($"{parser}: one case took {caseTime.Elapsed.TotalSeconds:0.0} s (limit {PerCaseLimit.TotalSeconds} s), {replay}: {c.Description}");
                if (thrown is null)
                {
                    accepted++;
                    continue;
                }
                if (!documented.Any(t => t.IsInstanceOfType(thrown)))
                    throw new FuzzFailure($"{parser}: undocumented {thrown.GetType().Name}, {replay}: {c.Description}: {thrown}", thrown);
                if (string.IsNullOrWhiteSpace(thrown.Message))
                    throw new FuzzFailure($"{parser}: {thrown.GetType().Name} with an empty message, {replay}: {c.Description}", thrown);
                if (!c.MustName.Any(n => thrown.Message.Contains(n, StringComparison.Ordinal)))
                    throw new FuzzFailure($"{parser}: the message names none of '{string.Join("', '", c.MustName)}', {replay}: {c.Description}: {thrown.Message}", thrown);
                string kind = thrown.GetType().Name;
                rejected[kind] = rejected.GetValueOrDefault(kind) + 1;
            }
        }, TaskCreationOptions.LongRunning);

        // A hang never returns: wait with a generous overall limit and report the case that was running.
        var limit = TimeSpan.FromSeconds(Math.Max(120, iterations / 50.0));
        if (!run.Wait(limit))
            throw new FuzzFailure($"{parser}: no result after {limit.TotalSeconds:0} s (a hang?); case running: {Volatile.Read(ref current)}");
        run.GetAwaiter().GetResult(); // rethrows a failure with the case and how to replay it
        var stats = new Stats(parser, cases, accepted, rejected, stopwatch.Elapsed);
        output?.WriteLine($"{stats} (WORKBOOK_FUZZ_SEED={shownBase})");
        return stats;
    }
}

public sealed class FuzzFailure : Exception
{
    public FuzzFailure(string message, Exception? inner = null) : base(message, inner) { }
}
