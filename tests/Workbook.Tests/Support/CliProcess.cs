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

    /// <summary>A run with the child's peak resident memory (VmHWM, sampled from /proc while it ran; 0 where /proc is missing).</summary>
    public sealed record MeasuredResult(int ExitCode, string Out, string Err, long PeakRssBytes);

    /// <summary>The CLI under test; WORKBOOK_TEST_CLI names another build's Workbook.Cli.dll (to see a regression test fail on older code).</summary>
    public static string CliDll => Environment.GetEnvironmentVariable("WORKBOOK_TEST_CLI") is { Length: > 0 } other ? other : Path.Combine(AppContext.BaseDirectory, "Workbook.Cli.dll");

    public static Process Start(IReadOnlyDictionary<string, string> environment, params string[] args) => StartIn(environment, null, args);

    /// <summary>As <see cref="Start(IReadOnlyDictionary{string, string}, string[])"/>, in <paramref name="workingDirectory"/> when given.</summary>
    public static Process StartIn(IReadOnlyDictionary<string, string> environment, string? workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (workingDirectory != null) info.WorkingDirectory = workingDirectory;
        info.ArgumentList.Add(CliDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
    }

    public static Result Run(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, params string[] args) => RunIn(environment, null, timeout, args);

    /// <summary>As <see cref="Run"/>, in <paramref name="workingDirectory"/> when given.</summary>
    public static Result RunIn(IReadOnlyDictionary<string, string> environment, string? workingDirectory, TimeSpan timeout, params string[] args)
    {
        using var p = StartIn(environment, workingDirectory, args);
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

    /// <summary>
    /// Runs the command under a managed-heap cap (<c>DOTNET_GCHeapHardLimit</c>, so a runaway managed allocation ends in
    /// an OutOfMemoryException instead of filling the machine) and samples its peak resident memory (VmHWM, which only
    /// grows) every 20 ms until it exits.
    /// </summary>
    public static MeasuredResult RunMeasured(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, long managedHeapCapBytes, params string[] args)
    {
        var env = new Dictionary<string, string>(environment) { ["DOTNET_GCHeapHardLimit"] = "0x" + managedHeapCapBytes.ToString("x") };
        using var p = Start(env, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        long peak = 0;
        var deadline = DateTime.UtcNow + timeout;
        while (!p.HasExited)
        {
            peak = Math.Max(peak, PeakRss(p.Id));
            if (DateTime.UtcNow > deadline)
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"workbook {string.Join(' ', args)} did not finish in {timeout}.");
            }
            Thread.Sleep(20);
        }
        p.WaitForExit();
        return new MeasuredResult(p.ExitCode, stdout.Result, stderr.Result, peak);
    }

    static long PeakRss(int pid)
    {
        try
        {
            return Workbook.Diagnostics.ProcessStatus.Bytes("VmHWM", pid);
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
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
