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
        var notebooks = new Option<string?>("--notebooks") { Description = "Folder of .dib notebooks to run (default: the workbook's own; a notebooks/ folder near the working directory is never used unless named here)." };
        var embedded = NotebookCommand.EmbeddedOnlyOption();
        var parameters = new NotebookCommand.ParameterOptions(withModel: false);
        var list = new Option<bool>("--list") { Description = "Print the notebooks that would run, and where they are, without running them." };
        var workshop = new Option<bool>("--workshop")
        {
            Description = "Also run the workshop notebooks (notebooks/workshop/, with their solutions) into OUT/workshop/ and list them in the index.",
        };
        var cmd = new Command("reproduce", "Reproduce the paper's figures: run every notebook headless and write an HTML report per notebook plus an index.")
        {
            output, notebooks, embedded, list, workshop,
        };
        parameters.AddTo(cmd);
        cmd.SetAction(async (parse, cancel) =>
        {
            var error = parse.InvocationConfiguration.Error;
            string folder = parse.GetValue(notebooks) ?? Reproduction.WorkbookNotebooks();
            if (parse.GetValue(list))
            {
                foreach (var notebook in Reproduction.NotebooksIn(folder)) parse.InvocationConfiguration.Output.WriteLine(Util.ControlCharacters.Escape(notebook));
                return 0;
            }
            var options = parameters.Options(parse, environment) with { EmbeddedOnly = parse.GetValue(embedded) };
            using var progress = new NotebookCommand.RunProgress(error, "    ");
            var result = await Reproduction.RunAsync(folder, parse.GetValue(output)!, options with { WorkProgress = progress.Work }, new NotebookCommand.LineProgress(error),
                parse.GetValue(workshop), cancel, cellProgress: progress.Lines);
            progress.Dispose();
            parse.InvocationConfiguration.Output.WriteLine($"{result.Notebooks.Count(n => n.Succeeded)} of {result.Notebooks.Count} notebooks ran; open {Util.ControlCharacters.Escape(result.Index)}");
            foreach (var failed in result.Notebooks.Where(n => !n.Succeeded))
                error.WriteLine($"error: {CliErrors.Printable(Path.GetFileName(failed.Notebook))}: {CliErrors.Printable(failed.Error ?? "")}");
            return result.Succeeded ? 0 : CliErrors.Failure;
        });
        return cmd;
    }
}
