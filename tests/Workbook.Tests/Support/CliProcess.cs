using System.Diagnostics;

namespace Workbook.Tests.Support;

/// <summary>
/// Runs the <c>workbook</c> command in a child process (<c>dotnet Workbook.Cli.dll</c> from the test output folder),
/// for what an in-process run cannot show: a process killed mid-download, two processes at once, state that does not
/// outlive a process.
/// </summary>
public static class CliProcess
{
    public sealed record Result(int ExitCode, string Out, string Err);

    static string CliDll => Path.Combine(AppContext.BaseDirectory, "Workbook.Cli.dll");

    public static Process Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(CliDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
    }

    public static Result Run(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, params string[] args)
    {
        using var p = Start(environment, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"workbook {string.Join(' ', args)} did not finish in {timeout}.");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
