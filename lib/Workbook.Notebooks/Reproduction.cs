using System.Diagnostics;
using System.Net;
using System.Text;
using Workbook.Figures;

namespace Workbook.Notebooks;

/// <summary>One notebook of a reproduction: where its report is and how it went.</summary>
public sealed record ReproducedNotebook(string Notebook, string Title, string Report, bool Succeeded, string? Error, TimeSpan Elapsed);

public sealed record ReproductionResult(string OutputFolder, string Index, IReadOnlyList<ReproducedNotebook> Notebooks)
{
    public bool Succeeded => Notebooks.All(n => n.Succeeded);
}

/// <summary>
/// <c>workbook reproduce</c>: runs every notebook (the paper's figures) headless and writes one HTML report per
/// notebook, plotly.min.js beside them, and an index. Each figure uses the paper's model when it is in the hub
/// cache and the embedded stand-in otherwise (the notebook says which).
/// </summary>
public static class Reproduction
{
    /// <summary>The repository's <c>notebooks/</c> folder: searched upwards from the working directory, then from the program's folder.</summary>
    public static string FindNotebooks()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "notebooks");
                if (Directory.Exists(candidate) && Directory.EnumerateFiles(candidate, "*.dib").Any()) return candidate;
            }
        throw new DirectoryNotFoundException("No notebooks/ folder with .dib files was found above the working directory; run from the repository or pass --notebooks DIR.");
    }

    /// <param name="progress">One line per notebook as it starts and ends.</param>
    /// <param name="cellProgress">The runner's per-cell lines (null: indented into <paramref name="progress"/>).</param>
    public static async Task<ReproductionResult> RunAsync(string notebooksFolder, string outputFolder, NotebookRunOptions? options = null, IProgress<string>? progress = null,
        CancellationToken cancel = default, IProgress<string>? cellProgress = null)
    {
        var notebooks = Directory.EnumerateFiles(notebooksFolder, "*.dib").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToList();
        if (notebooks.Count == 0) throw new ArgumentException($"'{notebooksFolder}' holds no .dib notebooks.");
        Directory.CreateDirectory(outputFolder);
        PlotlyJs.WriteInto(outputFolder);
        var results = new List<ReproducedNotebook>();
        for (int i = 0; i < notebooks.Count; i++)
        {
            string name = Path.GetFileNameWithoutExtension(notebooks[i]);
            progress?.Report($"[{i + 1}/{notebooks.Count}] {name}");
            var clock = Stopwatch.StartNew();
            var run = await NotebookRunner.RunAsync(notebooks[i], (options ?? new NotebookRunOptions()) with
            {
                Progress = cellProgress ?? (progress is null ? null : new Indented(progress)),
            }, cancel);
            string report = Path.Combine(outputFolder, name + ".html");
            NotebookReport.Write(run, report, PlotlySource.Beside, backLink: "index.html");
            var failure = run.Failure;
            progress?.Report($"    {(run.Succeeded ? "ok" : $"FAILED at cell {failure?.Number}: {failure?.Error}")} ({NotebookReport.Seconds(clock.Elapsed)}) -> {report}");
            results.Add(new ReproducedNotebook(notebooks[i], run.Title, report, run.Succeeded, failure?.Error, clock.Elapsed));
        }
        string index = Path.Combine(outputFolder, "index.html");
        Util.AtomicFile.WriteAllText(index, IndexHtml(results));
        return new ReproductionResult(outputFolder, index, results);
    }

    /// <summary>Reports synchronously (unlike <see cref="Progress{T}"/>, which posts to the thread pool and can reorder lines).</summary>
    sealed class Indented(IProgress<string> inner) : IProgress<string>
    {
        public void Report(string value) => inner.Report("    " + value);
    }

    static string IndexHtml(IReadOnlyList<ReproducedNotebook> results)
    {
        var body = new StringBuilder();
        body.Append("<h1>Transformer Circuit Faithfulness Metrics are not Robust — reproduced</h1>\n");
        body.Append("<p>Each page below is one notebook of <code>notebooks/</code>, run headless by <code>workbook reproduce</code>: its explanations, " +
                    "code, outputs and figures. Where the paper's model is not on this machine, the notebook runs on a model built into the workbook " +
                    "and says so at the top; the figures then show the same analysis, not the paper's numbers.</p>\n");
        body.Append("<table><tr><th>notebook</th><th>status</th><th>time</th></tr>\n");
        foreach (var r in results)
        {
            string link = Path.GetFileName(r.Report);
            body.Append($"<tr><td><a href=\"{WebUtility.HtmlEncode(link)}\">{WebUtility.HtmlEncode(r.Title)}</a></td>" +
                        $"<td>{(r.Succeeded ? "ok" : "failed: " + WebUtility.HtmlEncode(r.Error ?? "stopped"))}</td><td>{NotebookReport.Seconds(r.Elapsed)}</td></tr>\n");
        }
        body.Append("</table>\n");
        return FigureHtml.Page("Circuit faithfulness workbook: figures", body.ToString(), PlotlySource.Beside);
    }
}
