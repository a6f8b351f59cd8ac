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

    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "Workbook.Cli.dll");

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

    /// <summary>Runs several commands at once, each in its own process; returns their results in the order given.</summary>
    public static Result[] RunAll(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, IReadOnlyList<string[]> commands)
    {
        var started = commands.Select(args => Start(environment, args)).ToList();
        try
        {
            var streams = started.Select(p => (Out: p.StandardOutput.ReadToEndAsync(), Err: p.StandardError.ReadToEndAsync())).ToList();
            var deadline = DateTime.UtcNow + timeout;
            for (int i = 0; i < started.Count; i++)
            {
                var left = deadline - DateTime.UtcNow;
                if (left < TimeSpan.Zero || !started[i].WaitForExit(left))
                    throw new TimeoutException($"workbook {string.Join(' ', commands[i])} did not finish in {timeout}.");
                started[i].WaitForExit();
            }
            return started.Select((p, i) => new Result(p.ExitCode, streams[i].Out.Result, streams[i].Err.Result)).ToArray();
        }
        finally
        {
            foreach (var p in started)
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.Dispose();
            }
        }
    }
}
