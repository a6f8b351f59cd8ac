using System.Net;
using System.Reflection;
using System.Text;

namespace Workbook.Figures;

/// <summary>
/// plotly.js itself, built into the library (npm package <c>plotly.js-dist-min</c>, MIT licence), so that figures
/// draw offline: the build downloads the package once into a cache, checks its published sha512 and embeds
/// <c>plotly.min.js</c> (see <c>build/PlotlyJs.targets</c>).
/// </summary>
public static class PlotlyJs
{
    public const string Version = "2.28.0";
    public const string FileName = "plotly.min.js";
    const string ResourceName = "Workbook.Figures.plotly.min.js";

    static readonly Lazy<string> Text = new(() =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"plotly.js is not built into this Workbook assembly (resource '{ResourceName}'); rebuild the library (build/PlotlyJs.targets).");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    });

    /// <summary>The source of plotly.min.js.</summary>
    public static string Source => Text.Value;

    /// <summary>Writes plotly.min.js into <paramref name="folder"/> (for pages that load it from beside them); returns its path.</summary>
    public static string WriteInto(string folder)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path) || new FileInfo(path).Length != Encoding.UTF8.GetByteCount(Source))
            Util.AtomicFile.WriteAllText(path, Source);
        return path;
    }
}

/// <summary>How a page gets plotly.js.</summary>
public enum PlotlySource
{
    /// <summary>Inside the page: one self-contained file (about 3.6 MB more).</summary>
    Inline,
    /// <summary>A <c>&lt;script src="plotly.min.js"&gt;</c> next to the page (write it with <see cref="PlotlyJs.WriteInto"/>).</summary>
    Beside,
}

/// <summary>
/// Renders figures as HTML: a fragment (a div and a script that draws into it once plotly.js is there), a standalone
/// page, and the notebook output (the fragment, preceded by plotly.js the first time in a process).
/// </summary>
public static class FigureHtml
{
    static int _counter;
    static int _plotlySent;

    /// <summary>
    /// A div and a script that draws <paramref name="figure"/> as soon as <c>window.Plotly</c> exists. The figure's
    /// JSON escapes &lt; and &gt;, so no label can close the script.
    /// </summary>
    public static string Fragment(Figure figure)
    {
        string id = $"workbook-figure-{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}";
        double height = figure.Layout.Height ?? 450;
        return $$"""
            <div id="{{id}}" class="workbook-figure" style="width:100%;height:{{height.ToString(System.Globalization.CultureInfo.InvariantCulture)}}px"></div>
            <script type="text/javascript">
            (function () {
              var figure = {{figure.ToJson()}};
              var tries = 0;
              function draw() {
                var el = document.getElementById("{{id}}");
                if (el && window.Plotly) { window.Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false }); return; }
                if (++tries < 400) setTimeout(draw, 25);
              }
              draw();
            })();
            </script>
            """;
    }

    /// <summary>
    /// <c>&lt;script&gt;</c> tags that load plotly.js inline as <c>window.Plotly</c>, also where an AMD loader
    /// (require.js, which some notebook front ends define) would otherwise capture it.
    /// </summary>
    public static string InlinePlotlyScript() =>
        "<script type=\"text/javascript\">window.__workbookDefine = window.define; window.define = undefined;</script>\n" +
        $"<script type=\"text/javascript\">{PlotlyJs.Source}</script>\n" +
        "<script type=\"text/javascript\">window.define = window.__workbookDefine;</script>\n";

    /// <summary>
    /// A figure as notebook output: the fragment, preceded by plotly.js the first time this process renders a figure
    /// (notebook outputs share one page, so later figures find <c>window.Plotly</c>). <see cref="ResetNotebookState"/>
    /// sends plotly.js again (e.g. after clearing all outputs).
    /// </summary>
    public static string NotebookOutput(Figure figure) =>
        (Interlocked.Exchange(ref _plotlySent, 1) == 0 ? InlinePlotlyScript() : "") + Fragment(figure);

    public static void ResetNotebookState() => Interlocked.Exchange(ref _plotlySent, 0);

    /// <summary>A standalone page with figures (and optional HTML before each).</summary>
    public static string Page(string title, IEnumerable<Figure> figures, PlotlySource plotly = PlotlySource.Inline) =>
        Page(title, string.Join("\n", figures.Select(Fragment)), plotly);

    /// <summary>A standalone page around <paramref name="bodyHtml"/> that loads plotly.js inline or from beside it.</summary>
    public static string Page(string title, string bodyHtml, PlotlySource plotly = PlotlySource.Inline, string? extraHead = null)
    {
        string script = plotly == PlotlySource.Inline ? InlinePlotlyScript() : $"<script type=\"text/javascript\" src=\"{PlotlyJs.FileName}\"></script>\n";
        return $"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{WebUtility.HtmlEncode(title)}</title>
            <style>{Css}</style>
            {script}{extraHead}
            </head>
            <body>
            <main>
            {bodyHtml}
            </main>
            </body>
            </html>
            """;
    }

    public const string Css = """
        body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0; color: #222; background: #fff; }
        main { max-width: 1100px; margin: 0 auto; padding: 24px; }
        h1, h2, h3 { line-height: 1.25; }
        pre { background: #f6f8fa; padding: 10px 12px; overflow-x: auto; border-radius: 4px; font-size: 13px; }
        code { font-family: "SFMono-Regular", Consolas, "Liberation Mono", Menlo, monospace; }
        table { border-collapse: collapse; margin: 8px 0; }
        th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
        .cell { margin: 18px 0; }
        .cell-code pre { border-left: 3px solid #9db3cc; white-space: pre-wrap; }
        .cell-output { margin: 6px 0 0 0; }
        .cell-output pre { background: #fff; border: 1px solid #eee; }
        .cell-error pre { background: #fff0f0; border: 1px solid #f3b8b8; color: #8a1010; }
        .note { background: #fff8e1; border-left: 4px solid #E69F00; padding: 8px 12px; margin: 10px 0; }
        .meta { color: #666; font-size: 13px; }
        .workbook-figure { margin: 8px 0; }
        """;
}
