using System.Diagnostics;
using System.Globalization;

namespace Workbook.Progress;

/// <summary>
/// How far a long piece of work has come: the one progress record that evaluation, circuit discovery, report generation
/// and model loading report, and that the command line (a bar), a notebook cell (one updating line) and the headless
/// runner (lines on stderr) display. <see cref="Done"/> counts <see cref="Unit"/>s (prompts evaluated under a
/// methodology, discovery runs, epochs, ...) out of <see cref="Total"/>; <see cref="Item"/> says what is being worked on
/// now (a methodology label, "dataset means", a part).
/// </summary>
public sealed record WorkProgress(string Stage, string? Item, long Done, long Total, string Unit, TimeSpan Elapsed, TimeSpan? Remaining)
{
    /// <summary>Done / Total in [0, 1] (1 when there is nothing to do).</summary>
    public double Fraction => Total <= 0 ? 1 : Math.Clamp((double)Done / Total, 0, 1);

    public bool Finished => Done >= Total;

    /// <summary>"evaluation 1,350/3,000 prompts (45%) · edge/specific/resample · 1m02s, about 1m16s left".</summary>
    public override string ToString() =>
        $"{Stage} {Count(Done)}/{Count(Total)} {Unit} ({100 * Fraction:0}%){(Item is null ? "" : " · " + Item)} · {Duration(Elapsed)}" +
        (Remaining is { } r && !Finished ? $", about {Duration(r)} left" : "");

    static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>A short duration: "850ms", "12s", "3m05s", "1h02m".</summary>
    public static string Duration(TimeSpan t)
    {
        if (t < TimeSpan.Zero) t = TimeSpan.Zero;
        if (t.TotalSeconds < 1) return $"{t.TotalMilliseconds:0}ms";
        if (t.TotalMinutes < 1) return $"{t.TotalSeconds:0}s";
        if (t.TotalHours < 1) return $"{(int)t.TotalMinutes}m{t.Seconds:00}s";
        return $"{(int)t.TotalHours}h{t.Minutes:00}m";
    }
}

/// <summary>
/// Counts work done for one stage and reports <see cref="WorkProgress"/> with elapsed time and an estimate of the time
/// left (elapsed × remaining / done, so it settles as the work proceeds). Reports go to the sink synchronously, on the
/// working thread; sinks throttle what they draw. A null sink makes every call a no-op.
/// </summary>
public sealed class ProgressTracker
{
    readonly IProgress<WorkProgress>? _sink;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly string _stage, _unit;
    string? _item;

    public long Done { get; private set; }
    public long Total { get; }

    public ProgressTracker(IProgress<WorkProgress>? sink, string stage, long total, string unit)
    {
        if (total < 0) throw new ArgumentOutOfRangeException(nameof(total), total, "The amount of work cannot be negative.");
        _sink = sink;
        _stage = stage;
        _unit = unit;
        Total = total;
    }

    /// <summary>Reports the start (0 done) with what is worked on first.</summary>
    public void Start(string? item = null)
    {
        _item = item;
        Report();
    }

    /// <summary>Says what is being worked on now without counting anything (a preparation step: clean runs, dataset means).</summary>
    public void Working(string? item)
    {
        _item = item;
        Report();
    }

    /// <summary>Counts <paramref name="amount"/> more units done (never beyond the total) and reports.</summary>
    public void Advance(long amount, string? item = null)
    {
        if (amount < 0) throw new ArgumentOutOfRangeException(nameof(amount), amount, "Progress only moves forward.");
        Done = Math.Min(Total, Done + amount);
        if (item is not null) _item = item;
        Report();
    }

    /// <summary>Marks the stage complete (Done = Total) and reports once more.</summary>
    public void Complete()
    {
        Done = Total;
        Report();
    }

    void Report()
    {
        if (_sink is null) return;
        var elapsed = _clock.Elapsed;
        TimeSpan? remaining = Done > 0 && Done < Total ? TimeSpan.FromTicks((long)(elapsed.Ticks * ((double)(Total - Done) / Done))) : null;
        _sink.Report(new WorkProgress(_stage, _item, Done, Total, _unit, elapsed, remaining));
    }
}

/// <summary>Reports synchronously on the caller's thread (unlike <see cref="Progress{T}"/>, which posts to the thread pool and can reorder).</summary>
public sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
