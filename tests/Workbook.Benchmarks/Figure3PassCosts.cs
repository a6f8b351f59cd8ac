using System.Diagnostics;
using TorchSharp;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Benchmarks;

/// <summary>
/// Where one part of Figure 3 spends its time, by pass kind: `-- figure3-part` on the GPT-2 small stand-in (or the real
/// model) in the hub cache. Times a plain last-position pass of one batch, then each of the figure's eight methodologies
/// alone on one IOI part (100 prompts, batches of 50) with a warm cache (the clean runs and dataset means cached; a
/// resample methodology still records its batches, one corrupt pass each), then the whole part from a fresh cache.
/// Stopwatch figures from one run, for the README's per-part breakdown; not a BenchmarkDotNet measurement.
/// </summary>
public static class Figure3PassCosts
{
    public static void Run()
    {
        Console.WriteLine($"native heap: {NativeHeap.KeepFreedBlocks()}"); // as the CLI and notebook kernels run
        FigureSetup.EmbeddedOnly = false;
        using var setup = FigureSetup.For("ioi", FallbackSetup.ToyIoi(), new FigureParameters(Model: "gpt2"), paperPrompts: 100);
        if (!setup.IsPaperModel) throw new InvalidOperationException("GPT-2 small (or its stand-in: workbook models random --like gpt2) is not in the hub cache.");
        var part = new FigureSetup
        {
            Loaded = setup.Loaded, ModelName = setup.ModelName, Task = setup.Task, Circuit = setup.Circuit, Parts = setup.Parts.Take(1).ToArray(), IsPaperModel = true,
        };
        Console.WriteLine(part.Describe());
        Console.WriteLine($"threads {get_num_threads()}, part '{part.Parts[0].Name}', {part.Parts[0].Count} prompts of {part.Parts[0].SeqLen} tokens, batch {part.Task.DefaultBatchSize}");
        var grid = new ReportGrid { Values = new[] { AblationValue.Resample, AblationValue.Mean(part.Task.PaperMean) }, Sets = new[] { AblatedSet.Complement } };
        var methodologies = RobustnessReport.Methodologies(grid, part.Circuit, part.Task.PaperMean);
        var metrics = new[] { MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans };
        var clock = Stopwatch.StartNew();
        using (var cache = new EvaluationCache(part.Loaded.Model))
        {
            Evaluator.RunWithBaseline(part.Request(methodologies, metrics, cache: cache));
            Console.WriteLine($"warm-up, whole part: {clock.Elapsed.TotalSeconds:F2} s");
            var prompts = part.Parts[0];
            int batch = part.Task.DefaultBatchSize;
            for (int i = 0; i < 3; i++)
            {
                using var scope = NewDisposeScope();
                var tokens = tensor(prompts.Clean.Take(batch).SelectMany(p => p).Select(t => (long)t).ToArray(), new long[] { batch, prompts.SeqLen });
                clock.Restart();
                part.Loaded.Model.Forward(tokens, null, new LastPositionOnly());
                Console.WriteLine($"plain last-position pass, {batch} prompts: {clock.Elapsed.TotalSeconds:F3} s");
            }
            foreach (var m in methodologies)
            {
                clock.Restart();
                Evaluator.Run(part.Request(new[] { m }, metrics, cache: cache));
                Console.WriteLine($"{m.Label,-52} {clock.Elapsed.TotalSeconds:F2} s for the part (warm cache)");
            }
        }
        clock.Restart();
        Evaluator.RunWithBaseline(part.Request(methodologies, metrics));
        Console.WriteLine($"whole part, fresh cache: {clock.Elapsed.TotalSeconds:F2} s");
    }
}
