using System.CommandLine;
using Workbook.Figures;
using Workbook.Notebooks;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook notebook run FILE.dib --out report.html</c>: runs a notebook headless and writes an HTML report.</summary>
public static class NotebookCommand
{
    public static Command Build()
    {
        var file = new Argument<string>("notebook") { Description = "The .dib notebook to run." };
        var output = new Option<string?>("--out", "-o") { Description = "Write an HTML report of the cells, their outputs and figures to this file." };
        var png = new Option<string?>("--png") { Description = "Also render the report to this PNG with headless Chromium." };
        var plotly = new Option<string>("--plotly") { Description = "inline (one self-contained file, default) or beside (plotly.min.js next to the report).", DefaultValueFactory = _ => "inline" };
        var embedded = NotebookCommand.EmbeddedOnlyOption();
        var run = new Command("run", "Run a notebook cell by cell (in-process C# kernel); stop at the first failing cell with its message and a non-zero exit code.")
        {
            file, output, png, plotly, embedded,
        };
        run.SetAction(async (parse, cancel) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var source = parse.GetValue(plotly) switch
            {
                "inline" => PlotlySource.Inline,
                "beside" => PlotlySource.Beside,
                var other => throw new ArgumentException($"Unknown --plotly '{other}'. Use inline or beside."),
            };
            string? pngPath = parse.GetValue(png);
            string? report = parse.GetValue(output);
            if (pngPath is not null && report is null) throw new ArgumentException("--png renders the report: give --out as well.");
            var result = await NotebookRunner.RunAsync(parse.GetValue(file)!, new NotebookRunOptions
            {
                EmbeddedOnly = parse.GetValue(embedded), Progress = new LineProgress(error),
            }, cancel);
            if (report is not null)
            {
                NotebookReport.Write(result, report, source);
                error.WriteLine($"report: {Util.ControlCharacters.Escape(report)}");
                if (pngPath is not null)
                {
                    Chromium.Screenshot(report, pngPath, 1200, 900);
                    error.WriteLine($"png: {Util.ControlCharacters.Escape(pngPath)}");
                }
            }
            if (result.Failure is { } failure)
            {
                error.WriteLine($"error: cell {failure.Number} of {CliErrors.Printable(Path.GetFileName(result.Path))} failed: {CliErrors.Printable(failure.Error ?? "")}");
                return CliErrors.Failure;
            }
            parse.InvocationConfiguration.Output.WriteLine($"{Util.ControlCharacters.Escape(Path.GetFileName(result.Path))}: {result.Cells.Count} cells ran without errors in {NotebookReport.Seconds(result.Elapsed)}");
            return 0;
        });
        return new Command("notebook", "Run the workbook's .dib notebooks headless.") { run };
    }

    public static Option<bool> EmbeddedOnlyOption() => new("--embedded-only")
    {
        Description = "Use the embedded models for every figure even when the paper's models are in the hub cache (fast; also WORKBOOK_EMBEDDED_ONLY=1).",
    };

    /// <summary>Progress lines on stderr, written as they come (cell text and notebook names escaped: they come from the notebook).</summary>
    public sealed class LineProgress(TextWriter error) : IProgress<string>
    {
        public void Report(string value) => error.WriteLine(CliErrors.Printable(value));
    }
}
