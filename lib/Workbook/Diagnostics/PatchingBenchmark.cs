using System.Diagnostics;
using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Diagnostics;

/// <summary>Wall-clock times of one benchmarked operation, in milliseconds, over the timed repeats.</summary>
public sealed record Timing(string Name, double MedianMs, double MinMs, double MaxMs, double MeanMs, int Repeats);

/// <summary>What <see cref="PatchingBenchmark.Run"/> measured, with enough context to read the figures later.</summary>
public sealed record PatchingBenchmarkResult
{
    public required string Device { get; init; }
    public required string DeviceName { get; init; }
    public required string Model { get; init; }
    public required int Batch { get; init; }
    public required int Seq { get; init; }
    public required int GraphEdges { get; init; }
    public required string Circuit { get; init; }
    public required int CircuitEdges { get; init; }
    public required int PatchedEdges { get; init; }
    public required int Warmup { get; init; }
    public required int Repeats { get; init; }
    public required bool AllowTf32 { get; init; }
    public required double SetupSeconds { get; init; }
    public required Timing Plain { get; init; }
    public required Timing Patched { get; init; }
    public required Timing PatchedTokenSpecific { get; init; }
    /// <summary>Median patched time over median plain time.</summary>
    public double PatchedOverPlain => Patched.MedianMs / Plain.MedianMs;
    public double TokenSpecificOverPlain => PatchedTokenSpecific.MedianMs / Plain.MedianMs;
    /// <summary>Prompts per second of the plain and the patched forward (median).</summary>
    public double PlainPromptsPerSecond => Batch / (Plain.MedianMs / 1000);
    public double PatchedPromptsPerSecond => Batch / (Patched.MedianMs / 1000);
}

/// <summary>
/// Times the plain and the patched forward of <see cref="PatchingWorkload"/> on one device. Each timed run starts
/// and ends with a device synchronisation, so GPU times are the kernels' real duration, not their launch.
/// For the BenchmarkDotNet figures on the CPU see tests/Workbook.Benchmarks; this is the device-agnostic counterpart.
/// </summary>
public static class PatchingBenchmark
{
    public static PatchingBenchmarkResult Run(string deviceName, int batch, int seq = 16, int repeats = 10, int warmup = 2,
        Action<string>? progress = null, TransformerConfig? config = null, int circuitEdges = PatchingWorkload.DefaultCircuitEdges,
        PatchingWorkload.CircuitKind circuit = PatchingWorkload.CircuitKind.Random)
    {
        if (repeats < 1) throw new ArgumentException($"--repeat must be at least 1; got {repeats}.");
        if (warmup < 0) throw new ArgumentException($"--warmup must not be negative; got {warmup}.");
        var device = Devices.Parse(deviceName);
        progress?.Invoke($"building the workload on {deviceName} (batch {batch} x {seq} tokens)...");
        var setup = Stopwatch.StartNew();
        using var workload = PatchingWorkload.Create(batch, seq, device, config, circuitEdges, kind: circuit);
        Devices.Synchronize(device);
        double setupSeconds = setup.Elapsed.TotalSeconds;
        progress?.Invoke($"workload ready in {setupSeconds:F1} s: {workload.Graph.EdgeCount} edges, circuit {workload.Circuit.Count}, patched {workload.PatchedEdges}");

        // Interleaved rounds (plain, patched, token-specific, plain, ...) so that drift in the machine's load
        // affects the three alike and their ratios stay meaningful.
        var runs = new (string Name, Func<Tensor> Run)[]
        {
            ("plain forward", workload.PlainForward), ("patched forward", workload.PatchedForward), ("patched token-specific", workload.PatchedForwardTokenSpecific),
        };
        for (int i = 0; i < warmup; i++)
            foreach (var r in runs) Once(r.Run, device);
        var times = runs.Select(_ => new List<double>()).ToArray();
        for (int i = 0; i < repeats; i++)
            for (int j = 0; j < runs.Length; j++) times[j].Add(Once(runs[j].Run, device));
        var timings = runs.Select((r, j) =>
        {
            var sorted = times[j].OrderBy(x => x).ToArray();
            double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
            var t = new Timing(r.Name, median, sorted[0], sorted[^1], times[j].Average(), repeats);
            progress?.Invoke($"{r.Name,-24} median {t.MedianMs,9:F2} ms  (min {t.MinMs:F2}, max {t.MaxMs:F2}, {repeats} runs)");
            return t;
        }).ToArray();
        var (plain, patched, specific) = (timings[0], timings[1], timings[2]);
        return new PatchingBenchmarkResult
        {
            Device = deviceName,
            DeviceName = Devices.Describe(device),
            Model = workload.Model.Config.Name,
            Batch = batch,
            Seq = seq,
            GraphEdges = workload.Graph.EdgeCount,
            Circuit = circuit == PatchingWorkload.CircuitKind.Ioi ? "ioi-edges" : "random",
            CircuitEdges = workload.Circuit.Count,
            PatchedEdges = workload.PatchedEdges,
            Warmup = warmup,
            Repeats = repeats,
            AllowTf32 = device.type == DeviceType.CUDA && Devices.AllowTf32,
            SetupSeconds = setupSeconds,
            Plain = plain,
            Patched = patched,
            PatchedTokenSpecific = specific,
        };
    }

    /// <summary>One synchronised run in milliseconds; its tensors are freed before the next.</summary>
    static double Once(Func<Tensor> run, Device device)
    {
        using var scope = NewDisposeScope();
        Devices.Synchronize(device);
        var sw = Stopwatch.StartNew();
        run();
        Devices.Synchronize(device);
        return sw.Elapsed.TotalMilliseconds;
    }
}
