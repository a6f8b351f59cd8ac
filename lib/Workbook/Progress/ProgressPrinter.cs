using System.Diagnostics;

namespace Workbook.Progress;

/// <summary>
/// Shows <see cref="WorkProgress"/> on a text stream (stderr). On a terminal: one bar redrawn in place (at most ten
/// times a second, and once a second by itself so the clock moves). Elsewhere (a log file, CI): a plain line when a
/// stage starts or ends and at most every <c>lineInterval</c> in between, and a heartbeat line whenever nothing was
/// written for <c>heartbeat</c>, so a long step (a model load, one slow batch) is never silent.
/// </summary>
public sealed class ProgressPrinter : IProgress<WorkProgress>, IDisposable
{
    readonly TextWriter _writer;
    readonly bool _terminal;
    readonly TimeSpan _lineInterval, _heartbeat;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly object _lock = new();
    readonly Timer? _timer;
    TimeSpan _lastWrite, _lastNews, _lastDraw = TimeSpan.MinValue;
    WorkProgress? _last;
    string? _lastStage;
    int _barWidth;
    bool _disposed;

    /// <param name="terminal">Draw a bar in place (a terminal) instead of writing lines.</param>
    /// <param name="prefix">Written before every line (an indent, a cell number).</param>
    public ProgressPrinter(TextWriter writer, bool terminal, string prefix = "", TimeSpan? lineInterval = null, TimeSpan? heartbeat = null)
    {
        _writer = writer;
        _terminal = terminal;
        Prefix = prefix;
        _lineInterval = lineInterval ?? TimeSpan.FromSeconds(5);
        _heartbeat = heartbeat ?? TimeSpan.FromSeconds(8);
        if (_heartbeat > TimeSpan.Zero) _timer = new Timer(_ => Tick(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>A printer for a command's stderr: a bar when <paramref name="error"/> is the console's stderr and a terminal, lines otherwise.</summary>
    public static ProgressPrinter ForStandardError(TextWriter error, string prefix = "") =>
        new(error, ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected, prefix);

    /// <summary>Written before every line; change it between steps (for example the running cell's number).</summary>
    public string Prefix { get; set; }

    /// <summary>What the heartbeat says while no progress has been reported since the last <see cref="Line"/> (a step's name).</summary>
    public string? Activity { get; set; }

    public void Report(WorkProgress value)
    {
        lock (_lock)
        {
            if (_disposed) return;
            bool newStage = value.Stage != _lastStage || _last is null || value.Done < _last.Done;
            bool repeat = !newStage && _last is { Finished: true } && value.Finished; // Advance to the end, then Complete
            _last = value;
            var now = _clock.Elapsed;
            _lastNews = now;
            if (repeat) return;
            _lastStage = value.Stage;
            if (_terminal)
            {
                if (newStage || value.Finished || now - _lastDraw >= TimeSpan.FromMilliseconds(100)) DrawBar(value, now);
                if (value.Finished) EndBar();
            }
            else if (newStage || value.Finished || now - _lastWrite >= _lineInterval)
            {
                WriteLine(Prefix + value, now);
            }
        }
    }

    /// <summary>Writes a line of its own (the bar, if any, is cleared first and redrawn by the next report).</summary>
    public void Line(string text)
    {
        lock (_lock)
        {
            if (_disposed) return;
            EndBar();
            WriteLine(Prefix + text, _clock.Elapsed);
            _lastNews = _clock.Elapsed;
            _last = null;
            _lastStage = null;
        }
    }

    void Tick()
    {
        lock (_lock)
        {
            if (_disposed) return;
            var now = _clock.Elapsed;
            if (_terminal)
            {
                if (_last is { Finished: false } last && now - _lastDraw >= TimeSpan.FromSeconds(1))
                    DrawBar(last with { Elapsed = last.Elapsed + (now - _lastNews) }, now);
                return;
            }
            if (now - _lastWrite < _heartbeat) return;
            // The last report with its clock moved on to now; the estimate of the time left is not updated without news.
            string what = _last is { Finished: false } p ? (p with { Elapsed = p.Elapsed + (now - _lastNews), Remaining = null }).ToString() : Activity ?? "working";
            WriteLine($"{Prefix}... still running: {what} (no news for {WorkProgress.Duration(now - _lastNews)})", now);
        }
    }

    // Part names, methodology labels and notebook cells come from files a user was handed: control characters are escaped.
    void WriteLine(string text, TimeSpan now)
    {
        _writer.WriteLine(Util.ControlCharacters.Escape(text));
        _writer.Flush();
        _lastWrite = now;
    }

    void DrawBar(WorkProgress p, TimeSpan now)
    {
        const int width = 24;
        int filled = (int)(p.Fraction * width);
        string line = Util.ControlCharacters.Escape($"{Prefix}[{new string('#', filled)}{new string('.', width - filled)}] {p}");
        _writer.Write("\r" + line + new string(' ', Math.Max(0, _barWidth - line.Length)));
        _writer.Flush();
        _barWidth = line.Length;
        _lastDraw = now;
        _lastWrite = now;
    }

    void EndBar()
    {
        if (_barWidth == 0) return;
        _writer.WriteLine();
        _barWidth = 0;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            EndBar();
            _disposed = true;
        }
        _timer?.Dispose();
    }
}
