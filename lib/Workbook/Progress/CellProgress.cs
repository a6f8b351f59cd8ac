namespace Workbook.Progress;

/// <summary>
/// Progress in a notebook: one line per cell that is updated in place (not a new line per report). The notebook host
/// supplies two functions: <c>currentCell</c> identifies the running cell (so a second evaluation in the same cell
/// reuses its line) and <c>createLine</c> adds an updatable text output to that cell and returns its updater. In VS Code
/// the generated setup script passes .NET Interactive's <c>display(...)</c> and <c>DisplayedValue.Update</c>; the headless
/// runner passes the same and also prints the lines on stderr.
/// </summary>
public sealed class CellProgress : IProgress<WorkProgress>
{
    readonly Func<object?> _currentCell;
    readonly Func<Action<string>> _createLine;
    readonly TimeSpan _interval;
    readonly object _lock = new();
    object? _cell;
    Action<string>? _update;
    DateTime _lastUpdate;

    public CellProgress(Func<object?> currentCell, Func<Action<string>> createLine, TimeSpan? interval = null)
    {
        _currentCell = currentCell;
        _createLine = createLine;
        _interval = interval ?? TimeSpan.FromMilliseconds(500);
    }

    /// <summary>Also told every report (the headless runner prints them on stderr); null: nothing else.</summary>
    public IProgress<WorkProgress>? Also { get; init; }

    public void Report(WorkProgress value)
    {
        Also?.Report(value);
        lock (_lock)
        {
            var cell = _currentCell();
            var now = DateTime.UtcNow;
            if (_update is null || !ReferenceEquals(cell, _cell))
            {
                _cell = cell;
                _update = _createLine();
                _lastUpdate = DateTime.MinValue;
            }
            if (value.Done == 0 || value.Finished || now - _lastUpdate >= _interval)
            {
                _update(value.ToString());
                _lastUpdate = now;
            }
        }
    }
}

/// <summary>
/// Where library calls report progress when the caller gave no sink of its own: null (silent) in programs and tests;
/// a notebook's setup sets it to a <see cref="CellProgress"/> so that figure cells show their progress without passing
/// anything.
/// </summary>
public static class AmbientProgress
{
    public static IProgress<WorkProgress>? Default { get; set; }

    /// <summary><paramref name="given"/> when there is one, else <see cref="Default"/>.</summary>
    public static IProgress<WorkProgress>? Or(IProgress<WorkProgress>? given) => given ?? Default;
}
