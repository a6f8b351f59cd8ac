using Workbook.Notebooks;
using Workbook.Tests.Cli;
using Workbook.Tests.Notebooks;
using Workbook.Workshop;
using Xunit.Abstractions;

namespace Workbook.Tests.Workshop;

/// <summary>
/// The workshop notebooks run headless: solved (solutions swapped in) every check passes; unsolved every check says
/// "not done yet" and nothing crashes. Runs share the notebook collection (process-wide state).
/// </summary>
[Collection(NotebookCollection.Name)]
public class WorkshopNotebookTests(ITestOutputHelper output)
{

    static string Folder => Path.Combine(NotebookTests.NotebooksFolder(), Reproduction.WorkshopFolder);

    public static TheoryData<string> Notebooks()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(Folder, "*.dib").OrderBy(f => f, StringComparer.Ordinal)) data.Add(Path.GetFileName(f));
        return data;
    }

    [Fact]
    public void EveryWorkshopNotebookHasSolutionsForExactlyItsExercises()
    {
        var names = ((IEnumerable<object[]>)Notebooks()).Select(d => (string)d[0]).ToArray();
        Assert.Equal(new[]
        {
            "01-hooks-and-activations.dib", "02-patching-by-hand.dib", "03-the-six-choices.dib",
            "04-metrics-and-aggregation.dib", "05-discovery-and-ground-truth.dib", "06-your-own-circuit.dib",
        }, names);
        foreach (var name in names)
        {
            var stubs = Exercises(File.ReadAllText(Path.Combine(Folder, name)));
            var solved = Exercises(File.ReadAllText(Solutions.For(Path.Combine(Folder, name))));
            Assert.NotEmpty(stubs);
            Assert.Equal(stubs, solved);
            Assert.Contains("#load \"../../artifacts/notebook/workbook.csx\"", File.ReadAllText(Path.Combine(Folder, name)));
        }
    }

    static List<string> Exercises(string dib) => dib.Split('\n').Where(l => l.StartsWith(Solutions.ExerciseMarker, StringComparison.Ordinal))
        .Select(l => l[Solutions.ExerciseMarker.Length..].Trim()).ToList();

    static List<string> Checks(NotebookRun run) => run.Cells.SelectMany(c => c.Outputs)
        .Where(o => o.MimeType == "text/html" && o.Value.Contains("workshop-check")).Select(o => System.Net.WebUtility.HtmlDecode(o.Value)).ToList();

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task TheSolvedNotebookRunsAndEveryCheckPasses(string notebook)
    {
        string path = Path.Combine(Folder, notebook);
        var run = await NotebookRunner.RunAsync(path, new NotebookRunOptions { EmbeddedOnly = true, Solutions = Solutions.For(path) });
        output.WriteLine($"{notebook}: {run.Cells.Count} cells in {run.Elapsed.TotalSeconds:F1} s");
        Assert.True(run.Succeeded, $"{notebook} failed at cell {run.Failure?.Number}: {run.Failure?.Error}");
        var checks = Checks(run);
        foreach (var c in checks) output.WriteLine("  " + c);
        Assert.Equal(Exercises(File.ReadAllText(path)).Count, checks.Count);
        Assert.All(checks, c => Assert.Contains("workshop-passed", c));
        Assert.All(run.Cells.Where(c => c.Exercise is not null), c => Assert.True(c.Solved));
        Assert.Contains(run.Cells.SelectMany(c => c.Outputs), o => o.MimeType == "text/html" && o.Value.Contains("window.Plotly.newPlot"));
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task EveryUnsolvedNotebookReachesItsFirstExerciseAndTheCheckSaysNotDoneYet(string notebook)
    {
        var run = await NotebookRunner.RunAsync(Path.Combine(Folder, notebook), new NotebookRunOptions { EmbeddedOnly = true, StopAfterFirstCheck = true });
        Assert.True(run.Succeeded, $"{notebook} (unsolved) failed at cell {run.Failure?.Number}: {run.Failure?.Error}");
        Assert.True(run.StoppedAfterFirstCheck, $"{notebook}: no code cell follows its first exercise");
        var checks = Checks(run);
        Assert.Single(checks);
        Assert.Contains("not done yet", checks[0]);
        var ran = run.Cells.Where(c => c.Kind == CellKind.Code).ToList();
        Assert.NotNull(ran[^2].Exercise);  // the last two code cells: the first exercise's stub, then its check
        Assert.False(ran[^2].Solved);
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task TheUnsolvedNotebookRunsAndItsChecksSayNotDoneYet(string notebook)
    {
        var run = await NotebookRunner.RunAsync(Path.Combine(Folder, notebook), new NotebookRunOptions { EmbeddedOnly = true });
        Assert.True(run.Succeeded, $"{notebook} (unsolved) failed at cell {run.Failure?.Number}: {run.Failure?.Error}");
        var checks = Checks(run);
        Assert.NotEmpty(checks);
        Assert.All(checks, c => Assert.Contains("not done yet", c));
        Assert.All(run.Cells.Where(c => c.Exercise is not null), c => Assert.False(c.Solved));
    }

    [Fact]
    public async Task SolutionsAreRefusedWhenTheyDoNotMatchTheExercises()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-ws-{Guid.NewGuid():N}");
        try
        {
            const string meta = "#!meta\n\n{\"kernelInfo\":{\"defaultKernelName\":\"csharp\",\"items\":[{\"name\":\"csharp\"},{\"name\":\"markdown\"}]}}\n\n";
            Directory.CreateDirectory(Path.Combine(dir, "solutions"));
            string notebook = Path.Combine(dir, "nb.dib");
            File.WriteAllText(notebook, meta + "#!csharp\n\n// workbook: exercise 9.1\nint? x = null;\n\n#!csharp\n\nConsole.WriteLine(x is null ? \"stub\" : \"solved\");\n");
            Assert.Throws<FileNotFoundException>(() => Solutions.For(notebook));
            string solutions = Path.Combine(dir, "solutions", "nb.dib");
            File.WriteAllText(solutions, meta + "#!csharp\n\n// workbook: exercise 9.2\nint? x = 1;\n");
            var e = await Assert.ThrowsAsync<ArgumentException>(() => NotebookRunner.RunAsync(notebook, new NotebookRunOptions { Solutions = solutions }));
            Assert.Contains("no solution for exercise 9.1", e.Message);

            File.WriteAllText(solutions, meta + "#!csharp\n\n// workbook: exercise 9.1\nint? x = 1;\n");
            var cli = CliRunner.Run("notebook", "run", notebook, "--solved");
            Assert.True(cli.ExitCode == 0, cli.Err);
            var run = await NotebookRunner.RunAsync(notebook, new NotebookRunOptions { Solutions = Solutions.For(notebook) });
            Assert.Equal("solved\n", run.Cells[1].Outputs.Single().Value.Replace("\r\n", "\n"));
            var stub = await NotebookRunner.RunAsync(notebook);
            Assert.Equal("stub\n", stub.Cells[1].Outputs.Single().Value.Replace("\r\n", "\n"));

            // reproduce --workshop: the workshop notebook solved, in OUT/workshop/, listed in the index.
            string notebooks = Path.Combine(dir, "notebooks");
            Directory.CreateDirectory(Path.Combine(notebooks, "workshop", "solutions"));
            File.WriteAllText(Path.Combine(notebooks, "00-figure.dib"), meta + "#!markdown\n\n# A figure\n\n#!csharp\n\nConsole.WriteLine(1);\n");
            File.Copy(notebook, Path.Combine(notebooks, "workshop", "nb.dib"));
            File.Copy(solutions, Path.Combine(notebooks, "workshop", "solutions", "nb.dib"));
            string outDir = Path.Combine(dir, "report");
            var reproduce = CliRunner.Run("reproduce", "--out", outDir, "--notebooks", notebooks, "--workshop");
            Assert.True(reproduce.ExitCode == 0, reproduce.Err);
            Assert.Contains("2 of 2 notebooks ran", reproduce.Out);
            string index = File.ReadAllText(Path.Combine(outDir, "index.html"));
            Assert.Contains("<h2>Workshop</h2>", index);
            Assert.Contains("href=\"workshop/nb.html\"", index);
            string page = File.ReadAllText(Path.Combine(outDir, "workshop", "nb.html"));
            Assert.Contains("solved", page);
            Assert.Contains("exercise 9.1: the solution", page);
            Assert.True(File.Exists(Path.Combine(outDir, "workshop", "plotly.min.js")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
