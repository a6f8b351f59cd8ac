using Microsoft.DotNet.Interactive.Documents;

namespace Workbook.Notebooks;

/// <summary>
/// Exercise solutions kept apart from the notebook a reader works in. In the notebook an exercise's stub cell starts
/// with <c>// workbook: exercise ID</c>; the solutions notebook (<c>solutions/NAME.dib</c> beside it) holds one cell per
/// exercise starting with the same line. The runner swaps them in when asked, so CI runs the solved notebook while the
/// reader's copy keeps its stubs.
/// </summary>
public static class Solutions
{
    public const string ExerciseMarker = "// workbook: exercise ";

    /// <summary>The exercise a cell is the stub (or the solution) of, from its first line, else null.</summary>
    public static string? ExerciseOf(string cell)
    {
        string first = cell.TrimStart().Split('\n')[0].Trim();
        return first.StartsWith(ExerciseMarker, StringComparison.Ordinal) ? first[ExerciseMarker.Length..].Trim() : null;
    }

    /// <summary>The solutions notebook of <paramref name="notebook"/>: <c>solutions/NAME.dib</c> in its folder.</summary>
    public static string For(string notebook)
    {
        string full = Path.GetFullPath(notebook);
        string path = Path.Combine(Path.GetDirectoryName(full)!, "solutions", Path.GetFileName(full));
        if (!File.Exists(path)) throw new FileNotFoundException($"Notebook '{notebook}' has no solutions: '{path}' does not exist.", path);
        return path;
    }

    /// <summary>
    /// The solution of every exercise the notebook's code cells declare, by exercise id. Refused before anything runs:
    /// an exercise without a solution, a solution without an exercise, or an id given twice.
    /// </summary>
    internal static IReadOnlyDictionary<string, string> Read(string path, IEnumerable<string> notebookCells,
        Func<string, string, List<InteractiveDocumentElement>> readCells)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Solutions notebook '{path}' does not exist.", path);
        var solutions = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var cell in readCells(path, Util.SafeRead.ReadAllText(path, 64L << 20, m => new ArgumentException(m))).Where(e => e.KernelName != "markdown"))
            if (ExerciseOf(cell.Contents) is { } id && !solutions.TryAdd(id, cell.Contents))
                throw new ArgumentException($"Solutions notebook '{path}' has two solutions for exercise {id}.");
        var exercises = notebookCells.Select(ExerciseOf).OfType<string>().ToList();
        if (exercises.GroupBy(e => e).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"The notebook has two stubs for exercise {twice.Key}.");
        if (exercises.FirstOrDefault(e => !solutions.ContainsKey(e)) is { } missing)
            throw new ArgumentException($"Solutions notebook '{path}' has no solution for exercise {missing}.");
        if (solutions.Keys.FirstOrDefault(s => !exercises.Contains(s)) is { } extra)
            throw new ArgumentException($"Solutions notebook '{path}' solves exercise {extra}, which the notebook does not have.");
        return solutions;
    }
}
