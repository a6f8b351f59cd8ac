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
        root.Subcommands.Add(CircuitCommand.Build());
        root.Subcommands.Add(EvalCommand.Build());
        root.Subcommands.Add(ReportCommand.Build());
        root.Subcommands.Add(DatasetCommand.Build());
        root.Subcommands.Add(DiscoverCommand.Build());
        root.Subcommands.Add(RocCommand.Build());
        root.Subcommands.Add(MergeCommand.Build());
        root.Subcommands.Add(ReproduceCommand.Build());
        root.Subcommands.Add(NotebookCommand.Build());
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; errors go to <paramref name="error"/> with a non-zero exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = Build();
        var parsed = root.Parse(args);
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
}
