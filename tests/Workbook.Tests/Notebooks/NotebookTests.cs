using System.Diagnostics;
using Workbook.Figures;
using Workbook.Notebooks;
using Workbook.Tests.Cli;
using Workbook.Tests.Support;
using Xunit.Abstractions;

namespace Workbook.Tests.Notebooks;

/// <summary>
/// The notebook runner changes process-wide state while a notebook runs (working directory, the embedded-only switch),
/// so these tests run on their own, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NotebookCollection
{
    public const string Name = "notebooks";
}

/// <summary>Every notebook of notebooks/ runs headless on the embedded models; the runner stops at the first failing cell.</summary>
[Collection(NotebookCollection.Name)]
public class NotebookTests(ITestOutputHelper output)
{
    public static string NotebooksFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Workbook.sln"))) return Path.Combine(dir.FullName, "notebooks");
        throw new DirectoryNotFoundException("The repository root (Workbook.sln) was not found above the test binaries.");
    }

    public static TheoryData<string> Notebooks()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(NotebooksFolder(), "*.dib").OrderBy(f => f, StringComparer.Ordinal)) data.Add(Path.GetFileName(f));
        return data;
    }

    [Fact]
    public void TheNotebooksOfTheIssueExist()
    {
        var names = ((IEnumerable<object[]>)Notebooks()).Select(d => (string)d[0]).ToArray();
        Assert.Equal(new[] { "00-quickstart.dib", "01-ioi.dib", "02-docstring.dib", "03-sports-players.dib", "04-tracr.dib", "05-robustness-report.dib", "06-faithfulness-curves.dib" }, names);
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task EveryNotebookRunsTopToBottomOnTheEmbeddedModels(string notebook)
    {
        var clock = Stopwatch.StartNew();
        var run = await NotebookRunner.RunAsync(Path.Combine(NotebooksFolder(), notebook), new NotebookRunOptions { EmbeddedOnly = true });
        output.WriteLine($"{notebook}: {run.Cells.Count} cells in {clock.Elapsed.TotalSeconds:F1} s");
        foreach (var c in run.Cells.Where(c => c.Kind == CellKind.Code)) output.WriteLine($"  [{c.Number}] {c.Elapsed.TotalSeconds:F2} s");
        Assert.True(run.Succeeded, $"{notebook} failed at cell {run.Failure?.Number}: {run.Failure?.Error}");
        // The first code cell holds the parameters a reader edits; the second is the VS Code setup, replaced by the runner's
        // in-process references.
        var code = run.Cells.Where(c => c.Kind == CellKind.Code).ToList();
        Assert.True(NotebookRunner.IsParametersCell(code[0].Source), $"{notebook}: the first code cell is not the parameters cell");
        Assert.Contains("string Device = \"cpu\";", code[0].Source);
        Assert.True(code[1].ReplacedSetup);
        // Notebooks that promise figures produce them (the markup the figure formatter writes).
        var outputs = run.Cells.SelectMany(c => c.Outputs).ToList();
        Assert.True(outputs.Any(o => o.MimeType == "text/html" && o.Value.Contains("window.Plotly.newPlot")), $"{notebook} drew no figure.");
        // Without the paper's models, notebooks that have one say so and how to get it.
        if (notebook is "01-ioi.dib" or "02-docstring.dib" or "03-sports-players.dib")
            Assert.True(outputs.Any(o => o.Value.Contains("`workbook models pull ")), $"{notebook} does not say how to get the paper's model.");
    }

    static string WriteNotebook(string folder, params (string Kernel, string Code)[] cells)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "test.dib");
        File.WriteAllText(path, "#!meta\n\n{\"kernelInfo\":{\"defaultKernelName\":\"csharp\",\"items\":[{\"name\":\"csharp\"},{\"name\":\"markdown\"}]}}\n\n" +
            string.Join("\n", cells.Select(c => $"#!{c.Kernel}\n\n{c.Code}\n")));
        return path;
    }

    [Fact]
    public async Task TheRunnerStopsAtTheFirstFailingCellWithItsMessage()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-nb-{Guid.NewGuid():N}");
        try
        {
            string path = WriteNotebook(dir,
                ("markdown", "# A failing notebook"),
                ("csharp", "// workbook: setup\n#r \"nuget: SomethingThatMustNotBeDownloaded, 9.9.9\""),
                ("csharp", "Console.WriteLine(\"before\"); var x = 41;"),
                ("csharp", "throw new InvalidOperationException(\"the cell broke\");"),
                ("csharp", "Console.WriteLine(\"never\");"));
            var run = await NotebookRunner.RunAsync(path);
            Assert.False(run.Succeeded);
            Assert.Equal("A failing notebook", run.Title);
            Assert.Equal(4, run.Failure!.Number);
            Assert.Contains("InvalidOperationException: the cell broke", run.Failure.Error);
            Assert.Equal(4, run.Cells.Count); // the last cell never ran
            Assert.Equal("before\n", run.Cells[2].Outputs.Single().Value.Replace("\r\n", "\n"));

            // The CLI: non-zero exit, the message on stderr, and a report that shows the error.
            string report = Path.Combine(dir, "report.html");
            var cli = CliRunner.Run("notebook", "run", path, "--out", report);
            Assert.Equal(1, cli.ExitCode);
            Assert.Contains("error: cell 4 of test.dib failed: InvalidOperationException: the cell broke", cli.Err);
            Assert.Contains("the cell broke", File.ReadAllText(report));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task CompileErrorsFailTheCellAndOtherKernelsAreRefused()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-nb-{Guid.NewGuid():N}");
        try
        {
            var run = await NotebookRunner.RunAsync(WriteNotebook(dir, ("csharp", "int y = \"text\";")));
            Assert.Contains("CS0029", run.Failure!.Error);
            string other = WriteNotebook(Path.Combine(dir, "other"), ("fsharp", "1 + 1"));
            var e = await Assert.ThrowsAsync<ArgumentException>(() => NotebookRunner.RunAsync(other));
            Assert.Contains("'fsharp' cell", e.Message);
            Assert.Equal(1, CliRunner.Run("notebook", "run", Path.Combine(dir, "missing.dib")).ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task TheReportRendersMarkdownCodeOutputsAndWorkingFigures()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-nb-{Guid.NewGuid():N}");
        try
        {
            string path = WriteNotebook(dir,
                ("markdown", "# Report test\n\nSome **bold** text.\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
                ("csharp", "// workbook: setup"),
                ("csharp", "using Workbook.Figures;\nConsole.WriteLine(\"<not markup>\");\nCharts.Bars(new[] { new BarSeries(\"s\", new[] { new BarPoint(\"c\", 2) }) }, new ChartOptions { Title = \"Report figure\" })"));
            var run = await NotebookRunner.RunAsync(path);
            Assert.True(run.Succeeded, run.Failure?.Error);
            string html = NotebookReport.Html(run);
            Assert.Contains("<strong>bold</strong>", html);
            Assert.Contains("<table>", html);
            Assert.Contains("&lt;not markup&gt;", html);
            Assert.Contains("Report figure", html);
            Assert.Contains(PlotlyJs.Source[..200], html); // plotly.js inline: the page works offline
            Assert.Equal(PlotlyJs.Version, "2.28.0");
            Assert.StartsWith("/**", PlotlyJs.Source.TrimStart());
            Assert.Contains("plotly.js v2.28.0", PlotlyJs.Source[..500]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ReproduceWritesAReportPerNotebookPlotlyBesideThemAndAnIndex()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-nb-{Guid.NewGuid():N}");
        try
        {
            string notebooks = Path.Combine(dir, "notebooks");
            WriteNotebook(notebooks, ("markdown", "# Tiny figure"), ("csharp", "// workbook: setup"),
                ("csharp", "using Workbook.Figures;\nCharts.Bars(new[] { new BarSeries(\"s\", new[] { new BarPoint(\"c\", 1) }) }, new ChartOptions())"));
            string outDir = Path.Combine(dir, "report");
            var cli = CliRunner.Run("reproduce", "--out", outDir, "--notebooks", notebooks, "--embedded-only");
            Assert.True(cli.ExitCode == 0, cli.Err);
            Assert.Contains("1 of 1 notebooks ran", cli.Out);
            Assert.Contains("[1/1] test", cli.Err);
            string index = File.ReadAllText(Path.Combine(outDir, "index.html"));
            Assert.Contains("<a href=\"test.html\">Tiny figure</a>", index);
            string page = File.ReadAllText(Path.Combine(outDir, "test.html"));
            Assert.Contains("<script type=\"text/javascript\" src=\"plotly.min.js\"></script>", page);
            Assert.Equal(PlotlyJs.Source, File.ReadAllText(Path.Combine(outDir, "plotly.min.js")));

            // A failing notebook fails the command, and the index says which.
            WriteNotebook(Path.Combine(notebooks, "..", "bad"), ("csharp", "throw new Exception(\"bad notebook\");"));
            File.Move(Path.Combine(dir, "bad", "test.dib"), Path.Combine(notebooks, "zz-bad.dib"));
            var failed = CliRunner.Run("reproduce", "--out", outDir, "--notebooks", notebooks);
            Assert.Equal(1, failed.ExitCode);
            Assert.Contains("zz-bad.dib: Exception: bad notebook", failed.Err);
            Assert.Contains("failed: Exception: bad notebook", File.ReadAllText(Path.Combine(outDir, "index.html")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// A notebook report rendered by headless Chromium: plotly drew the figure (its SVG is in the DOM after the scripts
    /// ran), and the screenshot has the bars' colour where the plot is. Skipped without Chromium (.ci/run installs it
    /// where it can).
    /// </summary>
    [SkippableFact]
    public async Task AReportDrawsItsPlotInHeadlessChromium()
    {
        Skip.If(Chromium.Find() is null, "No Chromium on this machine (apt-get install chromium); the rendering check needs it.");
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-nb-{Guid.NewGuid():N}");
        try
        {
            string path = WriteNotebook(dir,
                ("markdown", "# Rendering test"),
                ("csharp", "// workbook: setup"),
                ("csharp", "using Workbook.Figures;\nCharts.Bars(new[] { new BarSeries(\"tall\", new[] { new BarPoint(\"a\", 10), new BarPoint(\"b\", 8) }) }, " +
                           "new ChartOptions { Title = \"Rendered\", Height = 600, ReferenceLines = new[] { PaperFigures.PerfectFaithfulness } })"));
            var run = await NotebookRunner.RunAsync(path);
            Assert.True(run.Succeeded, run.Failure?.Error);
            string report = Path.Combine(dir, "report.html");
            NotebookReport.Write(run, report);

            string dom = Chromium.DumpDom(report);
            Assert.Contains("class=\"main-svg\"", dom);
            Assert.Contains("trace bars", dom);
            Assert.Contains(">Rendered<", dom);

            string png = Path.Combine(dir, "report.png");
            Chromium.Screenshot(report, png, 1200, 1400);
            var image = PngImage.Read(png);
            Assert.Equal(1200, image.Width);
            // The bars are drawn in the palette's first colour (#0072B2), which nothing else on the page uses.
            int barPixels = image.Count((0x00, 0x72, 0xB2), tolerance: 12);
            output.WriteLine($"{barPixels} bar-coloured pixels");
            Assert.True(barPixels > 5000, $"Only {barPixels} pixels have the bars' colour: the plot was not drawn.");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
