using System.Diagnostics;
using System.Net;
using System.Text;
using Workbook.Figures;

namespace Workbook.Notebooks;

/// <summary>One notebook of a reproduction: where its report is and how it went.</summary>
public sealed record ReproducedNotebook(string Notebook, string Title, string Report, bool Succeeded, string? Error, TimeSpan Elapsed)
{
    /// <summary>A workshop notebook, run with its exercises' solutions.</summary>
    public bool Workshop { get; init; }
}

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
    /// <summary>
    /// The workbook's own notebooks, never a folder found by searching: those shipped beside the program (a published
    /// or packed tool carries them in notebooks/), else those of the checkout this program was built from (its root,
    /// recorded at build time, holding Workbook.sln and notebooks/; a build in a checkout copies none). Notebooks are C#
    /// that runs with the user's rights: a <c>notebooks/</c> folder in the working directory or one of its parents is
    /// never taken (pass --notebooks for those).
    /// </summary>
    public static string WorkbookNotebooks()
    {
        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, "notebooks") };
        if (BuiltFromCheckout() is { } root && File.Exists(Path.Combine(root, "Workbook.sln"))) candidates.Add(Path.Combine(root, "notebooks"));
        foreach (var candidate in candidates)
            if (Directory.Exists(candidate) && Directory.EnumerateFiles(candidate, "*.dib").Any()) return candidate;
        throw new DirectoryNotFoundException($"The workbook's notebooks were not found (looked in {string.Join(" and ", candidates)}); pass --notebooks DIR.");
    }

    /// <summary>The repository root this assembly was built in (recorded by the build), or null.</summary>
    static string? BuiltFromCheckout() => typeof(Reproduction).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
        .OfType<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "WorkbookRepositoryRoot")?.Value;

    /// <summary>The notebooks <see cref="RunAsync"/> runs from a folder, in order.</summary>
    public static IReadOnlyList<string> NotebooksIn(string notebooksFolder)
    {
        var notebooks = Directory.EnumerateFiles(notebooksFolder, "*.dib").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToList();
        return notebooks.Count > 0 ? notebooks : throw new ArgumentException($"'{notebooksFolder}' holds no .dib notebooks.");
    }

    /// <summary>The workshop notebooks' folder inside the notebooks folder.</summary>
    public const string WorkshopFolder = "workshop";

    /// <param name="progress">One line per notebook as it starts and ends.</param>
    /// <param name="workshop">Also run <c>workshop/*.dib</c> with their solutions, into <c>OUT/workshop/</c>.</param>
    /// <param name="cellProgress">The runner's per-cell lines (null: indented into <paramref name="progress"/>).</param>
    public static async Task<ReproductionResult> RunAsync(string notebooksFolder, string outputFolder, NotebookRunOptions? options = null, IProgress<string>? progress = null,
        bool workshop = false, CancellationToken cancel = default, IProgress<string>? cellProgress = null)
    {
        var notebooks = NotebooksIn(notebooksFolder);
        var workshopNotebooks = workshop ? Notebooks(Path.Combine(notebooksFolder, WorkshopFolder)) : new List<string>();
        if (workshop && workshopNotebooks.Count == 0) throw new ArgumentException($"--workshop: '{Path.Combine(notebooksFolder, WorkshopFolder)}' holds no .dib notebooks.");
        foreach (var w in workshopNotebooks) Solutions.For(w); // every workshop notebook has its solutions, before anything runs
        // Marked in progress, the earlier index removed: an interrupted run leaves no index vouching for a mix of old and new pages.
        var folderRun = Util.OutputFolderRun.Begin(outputFolder, "index.html", $"workbook reproduce, notebooks from {notebooksFolder}");
        PlotlyJs.WriteInto(outputFolder);
        var results = new List<ReproducedNotebook>();
        var all = notebooks.Select(n => (Path: n, Workshop: false)).Concat(workshopNotebooks.Select(n => (Path: n, Workshop: true))).ToList();
        for (int i = 0; i < all.Count; i++)
        {
            var (notebook, isWorkshop) = all[i];
            string name = Path.GetFileNameWithoutExtension(notebook);
            progress?.Report($"[{i + 1}/{all.Count}] {(isWorkshop ? WorkshopFolder + "/" : "")}{name}");
            var clock = Stopwatch.StartNew();
            var run = await NotebookRunner.RunAsync(notebook, (options ?? new NotebookRunOptions()) with
            {
                Progress = cellProgress ?? (progress is null ? null : new Indented(progress)),
                Solutions = isWorkshop ? Solutions.For(notebook) : null,
            }, cancel);
            string report = isWorkshop ? Path.Combine(outputFolder, WorkshopFolder, name + ".html") : Path.Combine(outputFolder, name + ".html");
            NotebookReport.Write(run, report, PlotlySource.Beside, backLink: isWorkshop ? "../index.html" : "index.html");
            var failure = run.Failure;
            progress?.Report($"    {(run.Succeeded ? "ok" : $"FAILED at cell {failure?.Number}: {failure?.Error}")} ({NotebookReport.Seconds(clock.Elapsed)}) -> {report}");
            results.Add(new ReproducedNotebook(notebook, run.Title, report, run.Succeeded, failure?.Error, clock.Elapsed) { Workshop = isWorkshop });
        }
        folderRun.Complete(IndexHtml(results)); // last: the index describes exactly this run's pages
        return new ReproductionResult(outputFolder, folderRun.IndexPath, results);
    }

    static List<string> Notebooks(string folder) => Directory.Exists(folder)
        ? Directory.EnumerateFiles(folder, "*.dib").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToList()
        : new List<string>();

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
        Table(body, results.Where(r => !r.Workshop));
        if (results.Any(r => r.Workshop))
        {
            body.Append("<h2>Workshop</h2>\n<p>The teaching notebooks of <code>notebooks/workshop/</code>, run with their exercises' solutions " +
                        "(<code>notebooks/workshop/solutions/</code>): each check cell shows whether the solved exercise passes.</p>\n");
            Table(body, results.Where(r => r.Workshop));
        }
        return FigureHtml.Page("Circuit faithfulness workbook: figures", body.ToString(), PlotlySource.Beside);
    }

    static void Table(StringBuilder body, IEnumerable<ReproducedNotebook> results)
    {
        body.Append("<table><tr><th>notebook</th><th>status</th><th>time</th></tr>\n");
        foreach (var r in results)
        {
            string link = (r.Workshop ? WorkshopFolder + "/" : "") + Path.GetFileName(r.Report);
            body.Append($"<tr><td><a href=\"{WebUtility.HtmlEncode(link)}\">{WebUtility.HtmlEncode(r.Title)}</a></td>" +
                        $"<td>{(r.Succeeded ? "ok" : "failed: " + WebUtility.HtmlEncode(r.Error ?? "stopped"))}</td><td>{NotebookReport.Seconds(r.Elapsed)}</td></tr>\n");
        }
        body.Append("</table>\n");
    }
}
