using System.Diagnostics;
using Workbook.Hub;

namespace Workbook.Cli;

/// <summary>A one-line download progress bar on stderr: file, bar, percent, bytes, rate and time left.</summary>
public sealed class ConsoleProgress : IDownloadProgress
{
    readonly TextWriter _error;
    readonly Stopwatch _clock = new();
    readonly object _lock = new();
    string _label = "";
    long _total, _done, _startBytes;
    TimeSpan _lastDraw = TimeSpan.MinValue;
    int _lastWidth;

    ConsoleProgress(TextWriter error) => _error = error;

    /// <summary>A progress bar when stderr is a terminal and not <paramref name="quiet"/>; otherwise null (silent).</summary>
    public static IDownloadProgress? ForTerminal(TextWriter error, bool quiet) =>
        quiet || !ReferenceEquals(error, Console.Error) || Console.IsErrorRedirected ? null : new ConsoleProgress(error);

    public void Started(string repoId, string file, long totalBytes, long resumedFrom)
    {
        lock (_lock)
        {
            _label = Util.ControlCharacters.Escape(file);
            _total = totalBytes;
            _done = _startBytes = resumedFrom;
            _clock.Restart();
            _lastDraw = TimeSpan.MinValue;
            if (resumedFrom > 0) Line($"{repoId}/{_label}: resuming at {Bytes(resumedFrom)} of {Bytes(totalBytes)}");
            Draw(force: true);
        }
    }

    public void Advanced(long bytes)
    {
        lock (_lock)
        {
            _done += bytes;
            Draw(force: false);
        }
    }

    public void Finished(bool success, string? error = null)
    {
        lock (_lock)
        {
            Draw(force: true);
            _error.WriteLine(success ? "" : "  (failed)");
            _lastWidth = 0;
        }
    }

    public void Note(string message)
    {
        lock (_lock) Line(message);
    }

    void Line(string text)
    {
        _error.Write("\r" + new string(' ', _lastWidth) + "\r");
        _error.WriteLine(CliErrors.Printable(text)); // notes quote names and server-sent text: no control characters reach the terminal
        _lastWidth = 0;
    }

    void Draw(bool force)
    {
        var now = _clock.Elapsed;
        if (!force && now - _lastDraw < TimeSpan.FromMilliseconds(100)) return;
        _lastDraw = now;
        double fraction = _total > 0 ? Math.Clamp((double)_done / _total, 0, 1) : 1;
        const int barWidth = 24;
        int filled = (int)(fraction * barWidth);
        double seconds = Math.Max(now.TotalSeconds, 1e-3);
        double rate = (_done - _startBytes) / seconds;
        string eta = rate > 0 && _done < _total ? $" {TimeSpan.FromSeconds((_total - _done) / rate):hh\\:mm\\:ss} left" : "";
        string label = _label.Length > 32 ? "…" + _label[^31..] : _label;
        string line = $"{label,-32} [{new string('#', filled)}{new string('.', barWidth - filled)}] {fraction * 100,5:0.0}% {Bytes(_done)}/{Bytes(_total)} {Bytes((long)rate)}/s{eta}";
        int pad = Math.Max(0, _lastWidth - line.Length);
        _error.Write("\r" + line + new string(' ', pad));
        _error.Flush();
        _lastWidth = line.Length;
    }

    /// <summary>Bytes in binary units: 512 B, 3.4 KiB, 548.1 MiB, 5.2 GiB.</summary>
    public static string Bytes(long n)
    {
        string[] units = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = n;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? $"{n} B" : $"{v:0.0} {units[u]}";
    }
}
