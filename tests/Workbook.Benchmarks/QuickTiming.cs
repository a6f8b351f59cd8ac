using System.Diagnostics;

namespace Workbook.Benchmarks;

/// <summary>A fast sanity timing (one warm-up, five runs, median and minimum), not a reported figure.</summary>
static class QuickTiming
{
    public static void Print(string name, Action run, int nameWidth = 24)
    {
        run();
        var times = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"{name.PadRight(nameWidth)} median {times[2],9:F1} ms  (min {times[0]:F1})");
    }
}
