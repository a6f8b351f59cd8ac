using System.Diagnostics;
using Workbook.Checkpoints;
using Workbook.Discovery;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Tasks;

namespace Workbook.Diagnostics;

/// <summary>
/// One way through a sweep: <see cref="CircuitsPerForward"/> 1 is the one-circuit path, null the memory-based stack.
/// <see cref="Circuits"/> counts what was evaluated: ACDC's distinct ablated sets, or Figure 5's threshold runs.
/// </summary>
public sealed record SweepTiming(int? CircuitsPerForward, double Seconds, int Circuits, int? ForwardPasses)
{
    public double CircuitsPerSecond => Circuits / Seconds;
}

/// <summary>A sweep timed one circuit at a time and stacked, in one process, one after the other; whether both gave the same result.</summary>
public sealed record SweepBenchmarkResult(string Workload, string Model, string Task, int Prompts, int Thresholds, int Threads, string Circuits,
    SweepTiming OneCircuit, SweepTiming Stacked, bool SameResult)
{
    /// <summary>Stacked circuits per second over one-circuit circuits per second.</summary>
    public double Speedup => OneCircuit.Seconds / Stacked.Seconds;
}

/// <summary>
/// Throughput of sweeps with and without <see cref="CircuitStack"/> (<c>workbook bench sweep</c>): an ACDC threshold sweep
/// on one model (circuits = the distinct ablated sets whose loss ACDC computes), or the ACDC part of Figure 5 (ACDC's 120
/// thresholds on both Tracr models, edge search, then the ROC curves; circuits = threshold runs). CPU timings on a busy
/// machine are noisy: after an untimed warm-up the two paths run back to back in one process so that their ratio is comparable.
/// </summary>
public static class SweepBenchmark
{
    public static IReadOnlyList<string> Workloads { get; } = new[] { "acdc", "figure5" };

    /// <param name="model">toy-ioi (the IOI task), tracr-reverse or tracr-xproportion (their own tasks).</param>
    /// <param name="tauExponents">ACDC's exponents (null: the paper's 24); thresholds are {1,3,5,7,9}·10^e.</param>
    public static SweepBenchmarkResult Acdc(string model, int prompts, IReadOnlyList<int>? tauExponents, int? circuitsPerForward, int threads = 1,
        IProgress<WorkProgress>? progress = null)
    {
        CircuitStack.CheckRequested(circuitsPerForward);
        if (prompts < 1) throw new ArgumentException($"The number of prompts must be at least 1, got {prompts}.");
        var loaded = model switch
        {
            "toy-ioi" or "tracr-reverse" or "tracr-xproportion" => ModelLoader.LoadWithTokenizer(model),
            _ => throw new ArgumentException($"The ACDC sweep benchmark runs on toy-ioi, tracr-reverse or tracr-xproportion, not '{model}'."),
        };
        using var owned = loaded;
        var task = model == "toy-ioi" ? KnownTasks.Ioi : KnownTasks.Get(model);
        var tokenizer = task.PreTokenized ? null : loaded.Tokenizer;
        // IOI: one template (one dataset part) of the prompt count, as a sweep over a few prompts would be.
        var parts = task.Tokenize(task.GenerateForEvaluation(tokenizer, 0, prompts), tokenizer).Take(1).ToList();
        var acdc = new AcdcOptions();
        if (tauExponents is not null) acdc = acdc with { TauExponents = tauExponents };
        DiscoveryPartial Sweep(int? perForward, out double seconds)
        {
            var clock = Stopwatch.StartNew();
            var partial = CircuitDiscovery.RunUnits(new DiscoveryRequest
            {
                Model = loaded.Model, Task = task, Parts = parts, Algorithm = DiscoveryAlgorithm.Acdc, Acdc = acdc with { CircuitsPerForward = perForward },
                BatchSize = parts[0].Count, Threads = threads, Progress = progress,
            });
            seconds = clock.Elapsed.TotalSeconds;
            return partial;
        }
        // An untimed warm-up of both paths (JIT, libtorch's first allocations), then the timed runs back to back.
        Sweep(circuitsPerForward, out _);
        Sweep(1, out _);
        var one = Sweep(1, out double oneSeconds);
        var stacked = Sweep(circuitsPerForward, out double stackedSeconds);
        bool same = one.Units.Cast<ThresholdUnitResult>().Zip(stacked.Units.Cast<ThresholdUnitResult>())
            .All(p => p.First.Removed.SequenceEqual(p.Second.Removed) && p.First.Faithfulness == p.Second.Faithfulness);
        return new SweepBenchmarkResult("acdc", model, task.Name, parts[0].Count, acdc.Taus().Count, threads, "distinct ablated sets",
            new SweepTiming(1, oneSeconds, one.Work!.CandidateSets, one.Work.ForwardPasses),
            new SweepTiming(circuitsPerForward, stackedSeconds, stacked.Work!.CandidateSets, stacked.Work.ForwardPasses), same);
    }

    /// <summary>The ACDC part of Figure 5 (<see cref="TracrRocFigures"/>: both Tracr tasks, edge search, 120 thresholds), both ways.</summary>
    public static SweepBenchmarkResult Figure5(int prompts, int? circuitsPerForward, int threads = 1, IProgress<WorkProgress>? progress = null)
    {
        CircuitStack.CheckRequested(circuitsPerForward);
        var options = new TracrRocOptions
        {
            Algorithms = new[] { DiscoveryAlgorithm.Acdc }, Searches = new[] { SearchSpace.Edge }, Prompts = prompts, Threads = threads,
        };
        TracrRocData Figure(int? perForward, out double seconds)
        {
            var clock = Stopwatch.StartNew();
            var data = TracrRocFigures.Compute(options with { Acdc = options.Acdc with { CircuitsPerForward = perForward } }, progress);
            seconds = clock.Elapsed.TotalSeconds;
            return data;
        }
        // Warm-up: the stacked path on a few prompts and thresholds (JIT, libtorch's first allocations), untimed.
        TracrRocFigures.Compute(options with { Prompts = Math.Min(prompts, 10), Acdc = new AcdcOptions { TauExponents = new[] { -3 }, TauBases = new[] { 1 }, CircuitsPerForward = circuitsPerForward } });
        var one = Figure(1, out double oneSeconds);
        var stacked = Figure(circuitsPerForward, out double stackedSeconds);
        bool same = one.Scores.Zip(stacked.Scores).All(p => p.First.Scores.SequenceEqual(p.Second.Scores))
                    && one.Curves.Zip(stacked.Curves).All(p => p.First.Curve.Area == p.Second.Curve.Area);
        int runs = options.Tasks.Count * options.Acdc.Taus().Count;
        return new SweepBenchmarkResult("figure5", "tracr-reverse, tracr-xproportion", string.Join(", ", options.Tasks), prompts, options.Acdc.Taus().Count, threads,
            "ACDC threshold runs", new SweepTiming(1, oneSeconds, runs, null), new SweepTiming(circuitsPerForward, stackedSeconds, runs, null), same);
    }
}
