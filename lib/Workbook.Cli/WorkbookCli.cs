using System.CommandLine;
using Workbook.Cli.Commands;

namespace Workbook.Cli;

/// <summary>The <c>workbook</c> command: a thin layer over the library; each verb lives in Commands/.</summary>
public static class WorkbookCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("Circuit faithfulness workbook: run models, patch edges, evaluate circuits under every ablation methodology.");
        root.Subcommands.Add(RunCommand.Build());
        root.Subcommands.Add(HooksCommand.Build());
        root.Subcommands.Add(PatchCommand.Build());
        root.Subcommands.Add(ModelsCommand.Build());
        root.Subcommands.Add(SelfCheckCommand.Build());
        root.Subcommands.Add(BenchCommand.Build());
        root.Subcommands.Add(TrainToyIoiCommand.Build());
        root.Subcommands.Add(TrainToyCommand.Build());
        root.Subcommands.Add(CircuitCommand.Build());
        root.Subcommands.Add(EvalCommand.Build());
        root.Subcommands.Add(ReportCommand.Build());
        root.Subcommands.Add(DatasetCommand.Build());
        root.Subcommands.Add(DiscoverCommand.Build());
        root.Subcommands.Add(RocCommand.Build());
        root.Subcommands.Add(CurveCommand.Build());
        root.Subcommands.Add(CardCommand.Build());
        root.Subcommands.Add(MergeCommand.Build());
        root.Subcommands.Add(ReproduceCommand.Build());
        root.Subcommands.Add(NotebookCommand.Build());
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; errors go to <paramref name="error"/> with a non-zero exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = Build();
        for (int i = 0; i < args.Length; i++)
            if (args[i].Contains('\0')) return CliErrors.Report(new ArgumentException($"Argument {i + 1} ('{Workbook.Util.ControlCharacters.Quote(args[i], 60)}') contains a NUL character (a control character no argument can hold)."), error);
        var parsed = root.Parse(args);
        // A bad option is one line naming it (and where to find the options), not the whole help text.
        if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
        {
            string verb = parsed.CommandResult.Command == root ? "workbook" : "workbook " + string.Join(' ', CommandPath(parsed.CommandResult));
            return CliErrors.Report(new ArgumentException($"{parsed.Errors[0].Message} (see '{verb} --help')"), error);
        }
        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        try
        {
            return parsed.Invoke(config);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, error);
        }
    }

    static IEnumerable<string> CommandPath(System.CommandLine.Parsing.SymbolResult? result)
    {
        var names = new Stack<string>();
        for (var r = result; r != null; r = r.Parent)
            if (r is System.CommandLine.Parsing.CommandResult c && c.Parent != null) names.Push(c.Command.Name);
        return names;
    }
}
