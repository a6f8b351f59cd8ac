using System.Diagnostics;
using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

/// <summary>
/// The command line against an adversary (issue 16, items 1, 3, 5, 10 and 13): notebooks planted above the working
/// directory, unbounded numeric flags, runs killed while they write into an earlier run's folder, option lists that
/// repeat themselves, and control characters echoed to the terminal.
/// </summary>
public sealed class HostileCliTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-hostile-cli-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException) { } // a killed child may still be closing a file
    }

    static readonly Dictionary<string, string> NoEnvironment = new();

    static void AssertOneLineError(CliRunner.Result r, string mustContain)
    {
        Assert.Equal(1, r.ExitCode);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{r.Err}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mustContain, lines[0]);
    }

    // ---------------------------------------------------------------- item 1: reproduce runs only the workbook's notebooks

    /// <summary>A notebook whose only code cell writes <paramref name="marker"/> (proof that it ran).</summary>
    static string Notebook(string title, string code) =>
        "#!meta\n\n{\"kernelInfo\":{\"defaultKernelName\":\"csharp\",\"items\":[{\"aliases\":[],\"name\":\"csharp\"},{\"aliases\":[],\"name\":\"markdown\"}]}}\n\n" +
        $"#!markdown\n\n# {title}\n\n#!csharp\n\n{code}\n";

    [Fact]
    public async Task ReproduceNeverRunsNotebooksFromAParentOfTheWorkingDirectory()
    {
        // The attacker's folder: notebooks/evil.dib two levels above where the user runs the command.
        string marker = Path.Combine(_dir, "pwned");
        Directory.CreateDirectory(Path.Combine(_dir, "notebooks"));
        File.WriteAllText(Path.Combine(_dir, "notebooks", "evil.dib"), Notebook("Evil", $"System.IO.File.WriteAllText(@\"{marker}\", \"ran\");"));
        string cwd = Path.Combine(_dir, "work", "deeper");
        Directory.CreateDirectory(cwd);

        // The real command: it starts on the workbook's first notebook (stopped there: a full run takes minutes).
        using var p = CliProcess.StartIn(NoEnvironment, cwd, "reproduce", "--out", Path.Combine(_dir, "report"), "--embedded-only");
        string? first = null;
        var reader = Task.Run(() =>
        {
            string? line;
            while ((line = p.StandardError.ReadLine()) != null)
                if (line.StartsWith("[1/", StringComparison.Ordinal)) return line;
            return null;
        });
        if (await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(120))) == reader) first = await reader;
        p.Kill(entireProcessTree: true);
        p.WaitForExit();
        Assert.NotNull(first);
        Assert.Contains("00-quickstart", first);
        Assert.False(File.Exists(marker), "the planted notebook ran");

        var listed = CliProcess.RunIn(NoEnvironment, cwd, TimeSpan.FromSeconds(60), "reproduce", "--out", Path.Combine(_dir, "listed"), "--list");
        Assert.True(listed.ExitCode == 0, listed.Err);
        var notebooks = listed.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Directory.GetFiles(Path.Combine(TestFiles.RepoRoot, "notebooks"), "*.dib").Order(StringComparer.Ordinal), notebooks);
        Assert.DoesNotContain(notebooks, n => n.Contains("evil"));
    }


    // ---------------------------------------------------------------- item 3: numeric flags checked up front

    [Theory]
    [InlineData("--prompts must be within 1..100,000", "eval", "--model", "toy-ioi", "--task", "ioi", "--prompts", "1000000000")]
    [InlineData("--prompts must be within 1..100,000", "dataset", "--task", "docstring", "--prompts", "0", "--out", "x")]
    [InlineData("--batch-size must be within 1..100,000", "report", "--model", "toy-ioi", "--task", "ioi", "--batch-size", "-5")]
    [InlineData("--threads must be within 1..", "discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "-a", "acdc", "--threads", "100000")]
    [InlineData("--threads must be within 1..", "train-toy-ioi", "--threads", "0", "--out", "x")]
    [InlineData("--epochs must be within 0..100,000", "discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "-a", "sp", "--epochs", "-1")]
    [InlineData("--batch must be within 1..100,000", "hooks", "--model", "toy-ioi", "--batch", "100000000")]
    [InlineData("--top must be within 1..", "run", "--model", "toy-ioi", "--tokens", "1", "--top", "0")]
    [InlineData("Cannot parse argument 'lots'", "hooks", "--model", "toy-ioi", "--batch", "lots")]
    [InlineData("is 401 exponents, more than 100", "discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "-a", "acdc", "--tau-exponents=-200..200")]
    [InlineData("-2147483648 is outside -300..300", "discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "-a", "acdc", "--tau-exponents=-2147483648..2147483647")]
    [InlineData("need about", "bench", "patching", "--batch", "100000")]
    [InlineData("--circuits-per-forward must be within 1..256", "discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "-a", "acdc", "--circuits-per-forward", "0")]
    [InlineData("--circuits-per-forward must be within 1..256", "curve", "--model", "tracr-reverse", "--task", "tracr-reverse", "-a", "eap", "--circuits-per-forward", "257")]
    [InlineData("--circuits-per-forward must be within 1..256", "bench", "sweep", "acdc", "--circuits-per-forward", "1000")]
    [InlineData("longer than the model's context of 32 tokens", "hooks", "--model", "toy-ioi", "--seq", "100")]
    public void OutOfRangeFlagsAreOneLineErrorsBeforeAnyHeavyWork(string message, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        AssertOneLineError(CliRunner.Run(args), message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed.TotalSeconds:0} s");
    }

    [Fact]
    public void HooksListsShapesForAHugeBatchWithoutAllocatingIt()
    {
        // The listing runs one prompt and writes the batch into the shapes (it used to allocate 100 GB and die natively).
        var r = CliRunner.Run("hooks", "--model", "toy-ioi", "--batch", "100000", "--seq", "4");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("hook_embed", r.Out);
        Assert.Contains("[100000, 4, 64]", r.Out);
        Assert.Contains("blocks.0.attn.hook_pattern", r.Out);
        Assert.Contains("[100000, 4, 4, 4]", r.Out);
    }

    // ---------------------------------------------------------------- item 9: datasets read whole

    [Fact]
    public void EndlessAndHugeDatasetFilesAreRefusedUnderAMemoryCap()
    {
        // A 3 GB sparse file (no disk used) and /dev/zero: both were read whole into memory.
        string huge = Path.Combine(_dir, "huge.json");
        using (var f = new FileStream(huge, FileMode.CreateNew)) f.SetLength(3L << 30);
        foreach (var (dataset, message) in new[] { (huge, "more than the 268,435,456 accepted"), ("/dev/zero", "not a regular file") })
        {
            var r = CliProcess.RunMeasured(NoEnvironment, TimeSpan.FromSeconds(120), 512L << 20, "eval", "--model", "toy-ioi", "--task", "ioi", "--dataset", dataset);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains(message, r.Err);
            Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.True(r.PeakRssBytes < 1L << 30, $"peak {r.PeakRssBytes >> 20} MiB");
        }
    }

    // ---------------------------------------------------------------- item 10: option lists that repeat themselves

    [Theory]
    [InlineData("'node,node' lists 'node' twice", "--components", "node,node")]
    [InlineData("lists 'node' and 'nodes', the same choice", "--components", "node,nodes")]
    [InlineData("'resample,zero,resample' lists 'resample' twice", "--values", "resample,zero,resample")]
    public void RepeatedChoicesAreRefusedBeforeTheModelIsLoaded(string message, string option, string value)
    {
        var clock = Stopwatch.StartNew();
        AssertOneLineError(CliRunner.Run("report", "--model", "toy-ioi", "--task", "ioi", option, value), message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed.TotalSeconds:0} s (the evaluation started)");
    }

    // ---------------------------------------------------------------- item 5: interrupted runs never leave a lying index

    [Fact]
    public void AReproduceKilledMidRunLeavesNoIndexOverAMixOfRuns()
    {
        string notebooks = Path.Combine(_dir, "notebooks");
        Directory.CreateDirectory(notebooks);
        File.WriteAllText(Path.Combine(notebooks, "00-fast.dib"), Notebook("Fast", "1 + 1"));
        File.WriteAllText(Path.Combine(notebooks, "01-slow.dib"), Notebook("Slow", "System.Threading.Thread.Sleep(300_000);"));
        // An earlier complete run in the same folder.
        string output = Path.Combine(_dir, "report");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "index.html"), "OLD INDEX: 00-fast ok, 01-slow ok");
        File.WriteAllText(Path.Combine(output, "00-fast.html"), "OLD");
        File.WriteAllText(Path.Combine(output, "01-slow.html"), "OLD");

        using (var p = CliProcess.Start(NoEnvironment, "reproduce", "--notebooks", notebooks, "--out", output))
        {
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (File.ReadAllText(Path.Combine(output, "00-fast.html")) == "OLD" && DateTime.UtcNow < deadline && !p.HasExited) Thread.Sleep(100);
            Assert.NotEqual("OLD", File.ReadAllText(Path.Combine(output, "00-fast.html")));
            p.Kill(entireProcessTree: true); // SIGKILL, in the middle of the slow notebook
            p.WaitForExit();
        }
        Assert.False(File.Exists(Path.Combine(output, "index.html")), "the old index still vouches for a folder that now mixes two runs");
        Assert.Contains("has not finished", File.ReadAllText(Path.Combine(output, "IN-PROGRESS")));

        // A complete run afterwards: an index of its own pages only, and the mark gone.
        File.Delete(Path.Combine(notebooks, "01-slow.dib"));
        var done = CliProcess.Run(NoEnvironment, TimeSpan.FromMinutes(3), "reproduce", "--notebooks", notebooks, "--out", output);
        Assert.True(done.ExitCode == 0, done.Err);
        string index = File.ReadAllText(Path.Combine(output, "index.html"));
        Assert.Contains("00-fast.html", index);
        Assert.DoesNotContain("01-slow", index);
        Assert.False(File.Exists(Path.Combine(output, "IN-PROGRESS")));
    }

    [Fact]
    public void ADatasetRunThatFailsMidWayLeavesNoIndexAndSaysSo()
    {
        string output = Path.Combine(_dir, "ioi");
        var first = CliRunner.Run("dataset", "--task", "ioi", "--model", "toy-ioi", "--prompts", "2", "--out", output);
        Assert.True(first.ExitCode == 0, first.Err);
        string index = Path.Combine(output, "index.json");
        var parts = System.Text.Json.JsonDocument.Parse(File.ReadAllText(index)).RootElement.GetProperty("files");
        Assert.Equal(30, parts.GetArrayLength());
        Assert.All(parts.EnumerateArray(), p => Assert.True(File.Exists(Path.Combine(output, p.GetProperty("file").GetString()!))));
        Assert.False(File.Exists(Path.Combine(output, "IN-PROGRESS")));

        // A second run into the same folder that fails after some parts (one part's file name is taken by a folder).
        string blocked = Path.Combine(output, parts[5].GetProperty("file").GetString()!);
        File.Delete(blocked);
        Directory.CreateDirectory(blocked);
        var second = CliRunner.Run("dataset", "--task", "ioi", "--model", "toy-ioi", "--prompts", "3", "--out", output);
        Assert.Equal(1, second.ExitCode);
        Assert.False(File.Exists(index), "the first run's index would describe a folder that now mixes two runs");
        Assert.True(File.Exists(Path.Combine(output, "IN-PROGRESS")));
    }

    // ---------------------------------------------------------------- item 13: control characters are escaped when echoed

    [Fact]
    public void ControlCharactersInNamesPathsAndPromptsAreEscapedInErrorsAndProgress()
    {
        const string esc = "\u001b]0;owned\u0007\u001b[2J";
        var model = CliRunner.Run("run", "--model", "./no-such" + esc, "--tokens", "1");
        AssertOneLineError(model, "\\x1b]0;owned\\x07\\x1b[2J");
        Assert.DoesNotContain('\u001b', model.Err);

        var dataset = CliRunner.Run("dataset", "--task", "docstring", "--prompts", "2", "--out", Path.Combine(_dir, "d\u001b[31m"));
        Assert.True(dataset.ExitCode == 0, dataset.Err);
        Assert.DoesNotContain('\u001b', dataset.Out);
        Assert.Contains("d\\x1b[31m", dataset.Out);

        // A notebook's cell text is echoed in progress lines.
        string notebook = Path.Combine(_dir, "n.dib");
        File.WriteAllText(notebook, Notebook("Title", "// \u001b[1A\u001b[2Kfake success line\n1 + 1"));
        var run = CliRunner.Run("notebook", "run", notebook);
        Assert.True(run.ExitCode == 0, run.Err);
        Assert.DoesNotContain('\u001b', run.Err);
        Assert.Contains("\\x1b[1A", run.Err);
    }

    [Fact]
    public void NativeErrorsArePrintedAsTheirFirstLine()
    {
        var e = new System.Runtime.InteropServices.ExternalException("[enforce fail at alloc_cpu.cpp:127] can't allocate memory\nframe #0: c10::ThrowEnforceNotMet\nframe #1: ...");
        var error = new StringWriter();
        Workbook.Cli.CliErrors.Report(e, error);
        Assert.Equal("error: libtorch: [enforce fail at alloc_cpu.cpp:127] can't allocate memory", error.ToString().TrimEnd());
    }
}
