using System.Collections.Concurrent;
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

    /// <summary>A single case taking longer than this counts as a hang.</summary>
    public static TimeSpan PerCaseLimit { get; set; } = TimeSpan.FromSeconds(10);

    public sealed record Stats(string Parser, long Cases, long Accepted, IReadOnlyDictionary<string, long> Rejected, TimeSpan Elapsed)
    {
        public override string ToString() =>
            $"{Parser}: {Cases} cases in {Elapsed.TotalSeconds:0.0} s; accepted {Accepted}; rejected " +
            string.Join(", ", Rejected.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}"));
    }

    /// <summary>
    /// Samples <paramref name="gen"/> <see cref="Iterations"/> times (scaled by <paramref name="share"/>) and runs
    /// <paramref name="parse"/> on each case. <paramref name="documented"/> lists the exception types a rejection may throw.
    /// </summary>
    public static Stats Run<T>(string parser, Gen<FuzzCase<T>> gen, Action<T> parse, Type[] documented, ITestOutputHelper? output = null,
        double share = 1.0, string? seed = null)
    {
        long iterations = Math.Max(1, (long)(Iterations * share));
        long accepted = 0, cases = 0;
        var rejected = new ConcurrentDictionary<string, long>();
        string? current = null;
        var stopwatch = Stopwatch.StartNew();
        var run = Task.Factory.StartNew(() => gen.Sample(c =>
        {
            Volatile.Write(ref current, c.Description);
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
            Interlocked.Increment(ref cases);
            if (caseTime.Elapsed > PerCaseLimit)
                throw new FuzzFailure($"{parser}: one case took {caseTime.Elapsed.TotalSeconds:0.0} s (limit {PerCaseLimit.TotalSeconds} s): {c.Description}");
            if (thrown is null)
            {
                Interlocked.Increment(ref accepted);
                return;
            }
            if (!documented.Any(t => t.IsInstanceOfType(thrown)))
                throw new FuzzFailure($"{parser}: undocumented {thrown.GetType().Name} for {c.Description}: {thrown}", thrown);
            if (string.IsNullOrWhiteSpace(thrown.Message))
                throw new FuzzFailure($"{parser}: {thrown.GetType().Name} with an empty message for {c.Description}", thrown);
            if (!c.MustName.Any(n => thrown.Message.Contains(n, StringComparison.Ordinal)))
                throw new FuzzFailure($"{parser}: the message names none of '{string.Join("', '", c.MustName)}' for {c.Description}: {thrown.Message}", thrown);
            rejected.AddOrUpdate(thrown.GetType().Name, 1, (_, n) => n + 1);
        }, seed: seed, iter: iterations, threads: 1, print: c => c.Description), TaskCreationOptions.LongRunning);

        // A hang never returns: wait with a generous overall limit and report the case that was running.
        var limit = TimeSpan.FromSeconds(Math.Max(120, iterations / 50.0));
        if (!run.Wait(limit))
            throw new FuzzFailure($"{parser}: no result after {limit.TotalSeconds:0} s (a hang?); case running: {Volatile.Read(ref current)}");
        run.GetAwaiter().GetResult(); // rethrows a failure with CsCheck's seed and the (shrunk) case
        var stats = new Stats(parser, cases, accepted, rejected, stopwatch.Elapsed);
        output?.WriteLine(stats.ToString());
        return stats;
    }
}

public sealed class FuzzFailure : Exception
{
    public FuzzFailure(string message, Exception? inner = null) : base(message, inner) { }
}
