using System.Globalization;
using System.Net;
using System.Text;
using Markdig;
using Workbook.Figures;

namespace Workbook.Notebooks;

/// <summary>
/// An HTML report of a notebook run: markdown cells rendered (Markdig, with tables), code cells with their source,
/// outputs (HTML as produced, so figures draw; text escaped) and time, and the failing cell's error. plotly.js is
/// inlined (one self-contained file) or loaded from beside the page.
/// </summary>
public static class NotebookReport
{
    static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    public static string MarkdownToHtml(string markdown) => Markdig.Markdown.ToHtml(markdown, Markdown);

    public static string Html(NotebookRun run, PlotlySource plotly = PlotlySource.Inline, string? backLink = null)
    {
        var body = new StringBuilder();
        if (backLink is not null) body.Append($"<p class=\"meta\"><a href=\"{WebUtility.HtmlEncode(backLink)}\">← all figures</a></p>\n");
        string status = run.Succeeded ? "ran without errors" : run.Failure is { } f ? $"failed at cell {f.Number}" : "stopped early";
        body.Append($"<p class=\"meta\">Notebook <code>{Encode(Path.GetFileName(run.Path))}</code>, run headless by <code>workbook notebook run</code>: " +
                    $"{run.Cells.Count} of {run.TotalCells} cells, {status}, {Seconds(run.Elapsed)}.</p>\n");
        foreach (var cell in run.Cells)
        {
            if (cell.Kind == CellKind.Markdown)
            {
                body.Append("<section class=\"cell cell-markdown\">\n").Append(MarkdownToHtml(cell.Source)).Append("</section>\n");
                continue;
            }
            body.Append($"<section class=\"cell cell-code\" id=\"cell-{cell.Number}\">\n");
            body.Append($"<div class=\"meta\">[{cell.Number}] {Seconds(cell.Elapsed)}{Note(cell)}</div>\n");
            body.Append($"<pre><code class=\"language-csharp\">{Encode(cell.Source.TrimEnd())}</code></pre>\n");
            foreach (var output in cell.Outputs)
            {
                if (output.MimeType == "text/html") body.Append($"<div class=\"cell-output\">{output.Value}</div>\n");
                else if (output.Value.Length > 0)
                    body.Append($"<div class=\"cell-output{(output.IsStandardError ? " cell-error" : "")}\"><pre>{Encode(output.Value.TrimEnd())}</pre></div>\n");
            }
            if (cell.Error is not null) body.Append($"<div class=\"cell-output cell-error\"><pre>{Encode(cell.Error)}</pre></div>\n");
            body.Append("</section>\n");
        }
        return FigureHtml.Page(run.Title, body.ToString(), plotly);
    }

    /// <summary>Writes the report atomically; with <see cref="PlotlySource.Beside"/> also plotly.min.js next to it.</summary>
    public static void Write(NotebookRun run, string path, PlotlySource plotly = PlotlySource.Inline, string? backLink = null)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        if (plotly == PlotlySource.Beside) PlotlyJs.WriteInto(folder);
        Util.AtomicFile.WriteAllText(path, Html(run, plotly, backLink));
    }

    static string Note(CellRun cell) =>
        cell.ReplacedSetup ? " — setup cell: the headless runner used its own, in-process references instead"
        : cell.Solved ? $" — exercise {Encode(cell.Exercise!)}: the solution (from solutions/) ran in place of the stub"
        : cell.Exercise is not null ? $" — exercise {Encode(cell.Exercise)}" : "";

    static string Encode(string text) => WebUtility.HtmlEncode(text);

    public static string Seconds(TimeSpan t) => t.TotalSeconds.ToString(t.TotalSeconds < 10 ? "F2" : "F1", CultureInfo.InvariantCulture) + " s";
}
