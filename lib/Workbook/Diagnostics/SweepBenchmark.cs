using System.Diagnostics;
using Workbook.Checkpoints;
using Workbook.Curves;
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

/// <summary>A sweep timed one circuit at a time and stacked (median seconds of alternating rounds in one process); whether both gave the same result.</summary>
public sealed record SweepBenchmarkResult(string Workload, string Model, string Task, int Prompts, int Thresholds, int Threads, string Circuits,
    SweepTiming OneCircuit, SweepTiming Stacked, bool SameResult)
{
    public int Rounds { get; init; } = SweepBenchmark.DefaultRounds;

    /// <summary>Stacked circuits per second over one-circuit circuits per second.</summary>
    public double Speedup => OneCircuit.Seconds / Stacked.Seconds;
}

/// <summary>
/// Throughput of sweeps with and without <see cref="CircuitStack"/> (<c>workbook bench sweep</c>): an ACDC threshold sweep
/// on one model (circuits = the distinct ablated sets whose loss ACDC computes), or the ACDC part of Figure 5 (ACDC's 120
/// thresholds on both Tracr models, edge search, then the ROC curves; circuits = threshold runs). CPU timings on a busy
/// machine are noisy: after an untimed warm-up both paths run in one process, in alternating order, and the median of each is reported.
/// </summary>
public static class SweepBenchmark
{
    /// <summary>Timed rounds of each path (the median is reported), alternating which path goes first.</summary>
    public const int DefaultRounds = 3;

    /// <summary>
    /// Runs <paramref name="sweep"/> once untimed per path (warm-up: JIT, libtorch's first allocations), then
    /// <paramref name="rounds"/> timed rounds of both paths, alternating their order; returns each path's last result and median seconds.
    /// </summary>
    static ((T Result, double Seconds) One, (T Result, double Seconds) Stacked) Measure<T>(Func<int?, T> sweep, int? circuitsPerForward, int rounds)
    {
        if (rounds < 1) throw new ArgumentException($"The number of rounds must be at least 1, got {rounds}.");
        sweep(circuitsPerForward);
        sweep(1);
        var times = new[] { new List<double>(), new List<double>() };
        var results = new T[2];
        for (int r = 0; r < rounds; r++)
            foreach (int path in r % 2 == 0 ? new[] { 0, 1 } : new[] { 1, 0 })
            {
                var clock = Stopwatch.StartNew();
                results[path] = sweep(path == 0 ? 1 : circuitsPerForward);
                times[path].Add(clock.Elapsed.TotalSeconds);
            }
        double Median(List<double> t) => t.Order().ElementAt(t.Count / 2);
        return ((results[0], Median(times[0])), (results[1], Median(times[1])));
    }

    public static IReadOnlyList<string> Workloads { get; } = new[] { "acdc", "figure5", "curve" };

    /// <param name="model">toy-ioi (the IOI task), tracr-reverse or tracr-xproportion (their own tasks).</param>
    /// <param name="tauExponents">ACDC's exponents (null: the paper's 24); thresholds are {1,3,5,7,9}·10^e.</param>
    public static SweepBenchmarkResult Acdc(string model, int prompts, IReadOnlyList<int>? tauExponents, int? circuitsPerForward, int threads = 1,
        int rounds = DefaultRounds, IProgress<WorkProgress>? progress = null)
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
        // Unless given, the stack the memory estimate allows (on the CPU a sweep's default is one circuit per forward).
        circuitsPerForward ??= CircuitStack.CircuitsPerForward(loaded.Model.Config, parts[0].Count, parts[0].SeqLen, int.MaxValue);
        var acdc = new AcdcOptions();
        if (tauExponents is not null) acdc = acdc with { TauExponents = tauExponents };
        var ((one, oneSeconds), (stacked, stackedSeconds)) = Measure(perForward => CircuitDiscovery.RunUnits(new DiscoveryRequest
        {
            Model = loaded.Model, Task = task, Parts = parts, Algorithm = DiscoveryAlgorithm.Acdc, Acdc = acdc with { CircuitsPerForward = perForward },
            BatchSize = parts[0].Count, Threads = threads, Progress = progress,
        }), circuitsPerForward, rounds);
        bool same = one.Units.Cast<ThresholdUnitResult>().Zip(stacked.Units.Cast<ThresholdUnitResult>())
            .All(p => p.First.Removed.SequenceEqual(p.Second.Removed) && p.First.Faithfulness == p.Second.Faithfulness);
        return new SweepBenchmarkResult("acdc", model, task.Name, parts[0].Count, acdc.Taus().Count, threads, "distinct ablated sets",
            new SweepTiming(1, oneSeconds, one.Work!.CandidateSets, one.Work.ForwardPasses),
            new SweepTiming(circuitsPerForward, stackedSeconds, stacked.Work!.CandidateSets, stacked.Work.ForwardPasses), same) { Rounds = rounds };
    }

    /// <summary>The ACDC part of Figure 5 (<see cref="TracrRocFigures"/>: both Tracr tasks, edge search, 120 thresholds), both ways.</summary>
    public static SweepBenchmarkResult Figure5(int prompts, int? circuitsPerForward, int threads = 1, int rounds = DefaultRounds, IProgress<WorkProgress>? progress = null)
    {
        CircuitStack.CheckRequested(circuitsPerForward);
        circuitsPerForward ??= CircuitStack.DefaultMaxCircuitsPerForward; // the Tracr models are tiny: the memory estimate allows the most
        var options = new TracrRocOptions
        {
            Algorithms = new[] { DiscoveryAlgorithm.Acdc }, Searches = new[] { SearchSpace.Edge }, Prompts = prompts, Threads = threads,
        };
        var ((one, oneSeconds), (stacked, stackedSeconds)) = Measure(perForward =>
            TracrRocFigures.Compute(options with { Acdc = options.Acdc with { CircuitsPerForward = perForward } }, progress), circuitsPerForward, rounds);
        bool same = one.Scores.Zip(stacked.Scores).All(p => p.First.Scores.SequenceEqual(p.Second.Scores))
                    && one.Curves.Zip(stacked.Curves).All(p => p.First.Curve.Area == p.Second.Curve.Area);
        int runs = options.Tasks.Count * options.Acdc.Taus().Count;
        return new SweepBenchmarkResult("figure5", "tracr-reverse, tracr-xproportion", string.Join(", ", options.Tasks), prompts, options.Acdc.Taus().Count, threads,
            "ACDC threshold runs", new SweepTiming(1, oneSeconds, runs, null), new SweepTiming(circuitsPerForward, stackedSeconds, runs, null), same) { Rounds = rounds };
    }

    /// <summary>
    /// A faithfulness curve (<see cref="FaithfulnessCurves"/>): <paramref name="points"/> circuit sizes plus the empty circuit
    /// under the paper's four methodologies, from seeded random scores (the sizes, not the ranking, set the work); circuits =
    /// circuit evaluations (methodology × size). Every circuit of a methodology is independent, so all of them can stack.
    /// </summary>
    public static SweepBenchmarkResult Curve(string model, int prompts, int points, int? circuitsPerForward, int threads = 1, int rounds = DefaultRounds,
        IProgress<WorkProgress>? progress = null)
    {
        CircuitStack.CheckRequested(circuitsPerForward);
        if (threads < 1) throw new ArgumentException($"The number of threads must be at least 1, got {threads}.");
        using var loaded = model switch
        {
            "toy-ioi" or "tracr-reverse" or "tracr-xproportion" => ModelLoader.LoadWithTokenizer(model),
            _ => throw new ArgumentException($"The curve benchmark runs on toy-ioi, tracr-reverse or tracr-xproportion, not '{model}'."),
        };
        var task = model == "toy-ioi" ? KnownTasks.Ioi : KnownTasks.Get(model);
        var tokenizer = task.PreTokenized ? null : loaded.Tokenizer;
        var parts = task.Tokenize(task.GenerateForEvaluation(tokenizer, 0, prompts), tokenizer).Take(1).ToList();
        var graph = CircuitDiscovery.SearchGraph(loaded.Model.Config, task, SearchSpace.Edge);
        var random = new Random(0);
        var scores = new EdgeScores(graph, graph.Edges.Select(_ => random.NextDouble()).ToArray(), new DiscoveryInfo
        {
            Model = model, Task = task.Name, Algorithm = DiscoveryAlgorithm.Eap, Search = SearchSpace.Edge, Ablation = AblationValue.Resample,
            Target = DiscoveryTarget.Kl, Prompts = 0, Seed = 0,
        });
        circuitsPerForward ??= CircuitStack.CircuitsPerForward(loaded.Model.Config, parts[0].Count, parts[0].SeqLen, int.MaxValue);
        var request = new CurveRequest
        {
            Model = loaded.Model, Task = task, Parts = parts, Scores = scores, Methodologies = FaithfulnessCurves.PaperGrid(),
            Grid = CurveGrid.LogSpaced(graph.EdgeCount, points), BatchSize = parts[0].Count, Progress = progress,
        };
        int previous = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(threads);
        try
        {
            var ((one, oneSeconds), (stacked, stackedSeconds)) = Measure(perForward => FaithfulnessCurves.Compute(request with { CircuitsPerForward = perForward }),
                circuitsPerForward, rounds);
            bool same = one.Zip(stacked).All(p => p.First.Points.SequenceEqual(p.Second.Points));
            int circuits = request.Methodologies.Count * (request.Grid!.Count + 1);
            return new SweepBenchmarkResult("curve", model, task.Name, parts[0].Count, 0, threads, "circuit evaluations",
                new SweepTiming(1, oneSeconds, circuits, null), new SweepTiming(circuitsPerForward, stackedSeconds, circuits, null), same) { Rounds = rounds };
        }
        finally
        {
            TorchSharp.torch.set_num_threads(previous);
        }
    }
}
