namespace Workbook.Benchmarks;

/// <summary>Peak resident set size (VmHWM) of this process, for native-memory measurements.</summary>
public static class MemoryProbe
{
    public static long PeakRssBytes() => ReadStatus("VmHWM:");
    public static long RssBytes() => ReadStatus("VmRSS:");

    static long ReadStatus(string key) => Workbook.Diagnostics.ProcessStatus.Bytes(key) is var b && b > 0 ? b : -1;

    /// <summary>Resets the peak counter (Linux: write 5 to /proc/self/clear_refs).</summary>
    public static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public static void Run(string[] args)
    {
        var b = new PatchingBenchmarks { Batch = args.Length > 0 ? int.Parse(args[0]) : 50 };
        b.Setup();
        b.PlainForward();
        b.PatchedForward();
        GC.Collect();
        long baseline = RssBytes();
        foreach (var (name, run) in new (string, Action)[] { ("plain forward", b.PlainForward), ("patched forward", b.PatchedForward), ("patched token-specific", b.PatchedForwardTokenSpecific) })
        {
            GC.Collect();
            ResetPeak();
            long before = RssBytes();
            run();
            Console.WriteLine($"{name,-24} peak RSS {PeakRssBytes() / 1e6,8:F0} MB  (+{(PeakRssBytes() - before) / 1e6:F0} MB over the {before / 1e6:F0} MB resident before; model+inputs+patch values {baseline / 1e6:F0} MB)");
        }
    }
}
