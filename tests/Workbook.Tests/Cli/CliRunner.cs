using Workbook.Cli;

namespace Workbook.Tests.Cli;

/// <summary>Runs the workbook command in-process and captures its output streams.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Out, string Err);

    public static Result Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = WorkbookCli.Run(args, output, error);
        return new Result(code, output.ToString(), error.ToString());
    }
}
