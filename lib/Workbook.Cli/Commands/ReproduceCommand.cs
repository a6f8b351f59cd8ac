using System.CommandLine;
using Workbook.Notebooks;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook reproduce --out DIR</c>: every notebook (the paper's figures) run headless, one HTML report each and an index.</summary>
public static class ReproduceCommand
{
    public static Command Build(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var output = new Option<string>("--out", "-o") { Description = "Folder for the reports (index.html, one page per notebook, plotly.min.js).", Required = true };
        var notebooks = new Option<string?>("--notebooks") { Description = "Folder of .dib notebooks (default: the repository's notebooks/)." };
        var embedded = NotebookCommand.EmbeddedOnlyOption();
        var parameters = new NotebookCommand.ParameterOptions(withModel: false);
        var cmd = new Command("reproduce", "Reproduce the paper's figures: run every notebook headless and write an HTML report per notebook plus an index.")
        {
            output, notebooks, embedded,
        };
        parameters.AddTo(cmd);
        cmd.SetAction(async (parse, cancel) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var options = parameters.Options(parse, environment) with { EmbeddedOnly = parse.GetValue(embedded) };
            string folder = parse.GetValue(notebooks) ?? Reproduction.FindNotebooks();
            using var progress = new NotebookCommand.RunProgress(error, "    ");
            var result = await Reproduction.RunAsync(folder, parse.GetValue(output)!, options with { WorkProgress = progress.Work }, new NotebookCommand.LineProgress(error), cancel,
                cellProgress: progress.Lines);
            progress.Dispose();
            parse.InvocationConfiguration.Output.WriteLine($"{result.Notebooks.Count(n => n.Succeeded)} of {result.Notebooks.Count} notebooks ran; open {result.Index}");
            foreach (var failed in result.Notebooks.Where(n => !n.Succeeded))
                error.WriteLine($"error: {Path.GetFileName(failed.Notebook)}: {failed.Error}");
            return result.Succeeded ? 0 : CliErrors.Failure;
        });
        return cmd;
    }
}
