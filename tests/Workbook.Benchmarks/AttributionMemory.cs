using TorchSharp;
using Workbook.Diagnostics;

namespace Workbook.Benchmarks;

/// <summary>Peak memory and stopwatch timings of edge attribution patching at GPT-2-small shape, in a fresh process.</summary>
public static class AttributionMemory
{
    static int BatchFrom(string[] args) => args.Length > 0 ? int.Parse(args[0]) : 100;

    public static void Run(string[] args)
    {
        torch.set_num_threads(Environment.ProcessorCount);
        using var workload = AttributionWorkload.Create(BatchFrom(args));
        GC.Collect();
        long baseline = MemoryProbe.RssBytes();
        Console.WriteLine($"model + inputs resident: {baseline / 1e9:F2} GB");
        foreach (var (name, run) in new (string, Action)[] { ("forward+backward", () => workload.ForwardBackward()), ("edge attribution (all edges)", () => workload.Attribution()) })
        {
            GC.Collect();
            MemoryProbe.ResetPeak();
            long before = MemoryProbe.RssBytes();
            run();
            Console.WriteLine($"{name,-30} peak RSS {MemoryProbe.PeakRssBytes() / 1e9,6:F2} GB  (+{(MemoryProbe.PeakRssBytes() - before) / 1e9:F2} GB over {before / 1e9:F2} GB before)");
        }
    }

    public static void Quick(string[] args)
    {
        torch.set_num_threads(Environment.ProcessorCount);
        using var workload = AttributionWorkload.Create(BatchFrom(args));
        foreach (var (name, run) in new (string, Action)[] { ("forward+backward", () => workload.ForwardBackward()), ("edge attribution", () => workload.Attribution()) })
            QuickTiming.Print(name, run, nameWidth: 20);
    }
}
