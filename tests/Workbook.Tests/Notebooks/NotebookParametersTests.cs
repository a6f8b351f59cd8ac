using Workbook.Notebooks;
using Workbook.Progress;
using Workbook.Tests.Cli;

namespace Workbook.Tests.Notebooks;

/// <summary>
/// A headless run sets a notebook's parameters cell from flags or WORKBOOK_* variables, checks them before any cell runs,
/// prints each cell's start and end with its time, and passes the progress inside cells to the caller while the report
/// keeps one progress line per cell.
/// </summary>
[Collection(NotebookCollection.Name)]
public class NotebookParametersTests
{
    const string Parameters = "// workbook: parameters\nstring? Model = null;\nstring Device = \"cpu\";\nstring DType = \"float32\";\nint? Prompts = null;\nint? BatchSize = null;";

    static string Notebook(string folder, params (string Kernel, string Code)[] cells)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "params.dib");
        File.WriteAllText(path, "#!meta\n\n{\"kernelInfo\":{\"defaultKernelName\":\"csharp\",\"items\":[{\"name\":\"csharp\"},{\"name\":\"markdown\"}]}}\n\n" +
            string.Join("\n", cells.Select(c => $"#!{c.Kernel}\n\n{c.Code}\n")));
        return path;
    }

    static string TempFolder() => Path.Combine(Path.GetTempPath(), $"workbook-params-{Guid.NewGuid():N}");

    [Fact]
    public async Task TheRunnerSetsTheGivenParametersAfterTheParametersCellAndSaysSo()
    {
        string dir = TempFolder();
        try
        {
            string nb = Notebook(dir, ("csharp", Parameters), ("csharp", "// workbook: setup"),
                ("csharp", "Console.WriteLine($\"model={Model ?? \"none\"} device={Device} dtype={DType} prompts={Prompts} batch={BatchSize}\");"));
            var run = await NotebookRunner.RunAsync(nb, new NotebookRunOptions { Parameters = new NotebookParameters(Model: "toy \"ioi\"", Prompts: 3, BatchSize: 2) });
            Assert.True(run.Succeeded, run.Failure?.Error);
            Assert.Contains(run.Cells[0].Outputs, o => o.Value.Contains("Set by this run: Model = \"toy \\\"ioi\\\"\", Prompts = 3, BatchSize = 2"));
            Assert.Contains(run.Cells[2].Outputs, o => o.Value.Contains("model=toy \"ioi\" device=cpu dtype=float32 prompts=3 batch=2"));

            // Without overrides the notebook's own values stand.
            var plain = await NotebookRunner.RunAsync(nb);
            Assert.Contains(plain.Cells[2].Outputs, o => o.Value.Contains("model=none device=cpu dtype=float32 prompts= batch="));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ParametersANotebookCannotTakeAreRefusedBeforeAnyCellRuns()
    {
        string dir = TempFolder();
        try
        {
            string noCell = Notebook(dir, ("csharp", "System.IO.File.WriteAllText(\"ran.txt\", \"\");"));
            var e = await Assert.ThrowsAsync<ArgumentException>(() => NotebookRunner.RunAsync(noCell, new NotebookRunOptions { Parameters = new NotebookParameters(Device: "cpu") }));
            Assert.Contains("no parameters cell", e.Message);
            Assert.False(File.Exists(Path.Combine(dir, "ran.txt")));

            string partial = Notebook(dir, ("csharp", "// workbook: parameters\nstring Device = \"cpu\";"));
            e = await Assert.ThrowsAsync<ArgumentException>(() => NotebookRunner.RunAsync(partial, new NotebookRunOptions { Parameters = new NotebookParameters(BatchSize: 4) }));
            Assert.Contains("has no BatchSize", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--device", "gpu", "Device 'gpu' is not valid")]
    [InlineData("--dtype", "int8", "dtype 'int8' is not one of float32, bfloat16 or float16")]
    [InlineData("--prompts", "0", "Prompts must be at least 1")]
    [InlineData("--batch-size", "-3", "batch size must be at least 1")]
    public void BadParameterFlagsGetOneLineErrorsBeforeAnyCellRuns(string flag, string value, string message)
    {
        string dir = TempFolder();
        try
        {
            string nb = Notebook(dir, ("csharp", Parameters + "\nSystem.IO.File.WriteAllText(\"ran.txt\", \"\");"));
            var cli = CliRunner.Run("notebook", "run", nb, flag, value);
            Assert.Equal(1, cli.ExitCode);
            Assert.Contains(message, cli.Err);
            Assert.Single(cli.Err.Trim().Split('\n'));
            Assert.False(File.Exists(Path.Combine(dir, "ran.txt")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CudaAskedForWhereThereIsNoneStopsBeforeAnyCellRuns()
    {
        Skip.If(Workbook.Model.Devices.CudaAvailable(), "this machine has CUDA");
        string dir = TempFolder();
        try
        {
            string nb = Notebook(dir, ("csharp", Parameters + "\nSystem.IO.File.WriteAllText(\"ran.txt\", \"\");"));
            var cli = CliRunner.Run("notebook", "run", nb, "--device", "cuda");
            Assert.Equal(1, cli.ExitCode);
            Assert.Contains("CUDA was requested ('cuda') but is not available", cli.Err);
            Assert.False(File.Exists(Path.Combine(dir, "ran.txt")));
            // auto falls back to the CPU and runs.
            var auto = CliRunner.Run("notebook", "run", nb, "--device", "auto");
            Assert.True(auto.ExitCode == 0, auto.Err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ProgressInsideACellReachesTheCallerAndTheReportKeepsOneLineForIt()
    {
        string dir = TempFolder();
        try
        {
            string nb = Notebook(dir, ("csharp", Parameters), ("csharp", "// workbook: setup"),
                ("csharp", "using Workbook.Experiments;\nvar setup = FigureSetup.For(\"ioi\", FallbackSetup.ToyIoi(), new(Model, Device, DType, Prompts, BatchSize), fallbackPartsPerOrder: 1);\n" +
                           "var result = PaperExperiments.NodesEdgesTokensValues(setup);\nConsole.WriteLine($\"rows {result.Rows.Count}\");\nsetup.Dispose();"));
            var seen = new List<WorkProgress>();
            var lines = new List<string>();
            var run = await NotebookRunner.RunAsync(nb, new NotebookRunOptions
            {
                EmbeddedOnly = true, Parameters = new NotebookParameters(Prompts: 4, BatchSize: 2),
                WorkProgress = new SynchronousProgress<WorkProgress>(seen.Add), Progress = new SynchronousProgress<string>(lines.Add),
            });
            Assert.True(run.Succeeded, run.Failure?.Error);
            var evaluation = seen.Where(p => p.Stage == "evaluation").ToList();
            Assert.NotEmpty(evaluation);
            // 2 parts (ABBA-0, BABA-0) × 4 prompts × 8 methodologies, counted up to the total without going back.
            Assert.All(evaluation, p => Assert.Equal(64, p.Total));
            for (int i = 1; i < evaluation.Count; i++) Assert.True(evaluation[i].Done >= evaluation[i - 1].Done);
            Assert.Equal(64, evaluation[^1].Done);
            Assert.Contains(seen, p => p.Stage == "setup" && p.Finished);
            // The report: one progress line in the evaluating cell, in its final state.
            var progressOutputs = run.Cells[2].Outputs.Where(o => o.Value.StartsWith("evaluation ", StringComparison.Ordinal) || o.Value.StartsWith("setup ", StringComparison.Ordinal)).ToList();
            Assert.Single(progressOutputs);
            Assert.Contains("evaluation 64/64 prompts (100%)", progressOutputs[0].Value);
            // What the cell prints afterwards is its own output, not glued to the end of the progress line.
            Assert.DoesNotContain("rows", progressOutputs[0].Value);
            Assert.Contains(run.Cells[2].Outputs, o => o.Value.StartsWith("rows ", StringComparison.Ordinal));
            // Each code cell's start and end, with its time.
            Assert.Contains(lines, l => l.StartsWith("[3/3] code using Workbook.Experiments;", StringComparison.Ordinal));
            Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\[3/3\] done in \d"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
