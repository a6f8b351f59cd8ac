using System.Diagnostics;
using System.Reflection;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using Workbook.Experiments;
using Workbook.Figures;

namespace Workbook.Notebooks;

public enum CellKind { Markdown, Code }

/// <summary>One output of a code cell: an HTML or plain-text value, standard output, or standard error.</summary>
public sealed record CellOutput(string MimeType, string Value, bool IsStandardError = false)
{
    /// <summary>A displayed value (a figure, a check, a progress line) rather than console text: printing never joins it.</summary>
    public bool IsDisplayed { get; init; }
}

/// <summary>A cell as it ran: its source, outputs, time, and the error when it failed.</summary>
public sealed record CellRun(int Number, CellKind Kind, string Source, IReadOnlyList<CellOutput> Outputs, TimeSpan Elapsed, string? Error = null, bool ReplacedSetup = false)
{
    /// <summary>The exercise this cell is the stub of (its first line is <c>// workbook: exercise ID</c>), else null.</summary>
    public string? Exercise { get; init; }
    /// <summary>The runner ran the exercise's solution instead of the stub (<see cref="NotebookRunOptions.Solutions"/>).</summary>
    public bool Solved { get; init; }

    public bool Failed => Error is not null;
}

/// <summary>A notebook run: every cell up to and including the first that failed.</summary>
public sealed record NotebookRun(string Path, string Title, IReadOnlyList<CellRun> Cells, TimeSpan Elapsed, int TotalCells)
{
    public bool Succeeded => Cells.All(c => !c.Failed) && Cells.Count == TotalCells;
    public CellRun? Failure => Cells.FirstOrDefault(c => c.Failed);
    public string Name => System.IO.Path.GetFileNameWithoutExtension(Path);
}

public sealed record NotebookRunOptions
{
    /// <summary>Run every figure on the embedded models even when the paper's model is in the hub cache (fast, deterministic).</summary>
    public bool EmbeddedOnly { get; init; }
    /// <summary>Two lines per code cell: "[3/12] code ..." as it starts, "[3/12] done in 12s" (or "failed after") as it ends (null: silent).</summary>
    public IProgress<string>? Progress { get; init; }
    /// <summary>
    /// A solutions notebook (<see cref="Solutions.For"/>): each cell whose first line is <c>// workbook: exercise ID</c>
    /// runs the solution cell with the same first line instead of the stub (null: the stubs run as written).
    /// </summary>
    public string? Solutions { get; init; }
    /// <summary>Progress inside cells (evaluations, discovery); also shown in the report as one line per cell. Null: only in the report.</summary>
    public IProgress<Progress.WorkProgress>? WorkProgress { get; init; }
    /// <summary>Values that replace the notebook's parameters cell's (see <see cref="NotebookParameters"/>); null: the notebook's own.</summary>
    public NotebookParameters? Parameters { get; init; }
    /// <summary>Let float32 matmuls on CUDA use TF32 during the run (<see cref="Model.Devices.AllowTf32"/>).</summary>
    public bool AllowTf32 { get; init; }
}

/// <summary>
/// Runs a <c>.dib</c> notebook headless, cell by cell, in an in-process .NET Interactive C# kernel; stops at the
/// first failing cell. A cell whose first line is <see cref="SetupMarker"/> is the notebook's setup for VS Code
/// (<c>#r "nuget: TorchSharp-cpu"</c> and <c>#load</c> of the generated script): the runner replaces it by
/// references to the assemblies this process already has, so nothing is downloaded.
/// </summary>
public static class NotebookRunner
{
    public const string SetupMarker = "// workbook: setup";
    /// <summary>The first line of a notebook's parameters cell: the values a reader edits, which a headless run may override.</summary>
    public const string ParametersMarker = "// workbook: parameters";
    static readonly SemaphoreSlim OneAtATime = new(1, 1);

    public static async Task<NotebookRun> RunAsync(string path, NotebookRunOptions? options = null, CancellationToken cancel = default)
    {
        options ??= new NotebookRunOptions();
        if (!File.Exists(path)) throw new FileNotFoundException($"Notebook '{path}' does not exist.", path);
        if (!path.EndsWith(".dib", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{path}' is not a .dib notebook; the runner reads Polyglot Notebooks' .dib format.");
        // A regular file of at most 64 MiB (a FIFO named *.dib would block the read forever).
        var elements = ReadCells(path, Util.SafeRead.ReadAllText(path, 64L << 20, m => new ArgumentException(m)));
        var solutions = options.Solutions is null ? null : Notebooks.Solutions.Read(options.Solutions, elements.Where(e => e.KernelName != "markdown").Select(e => e.Contents), ReadCells);
        var overrides = options.Parameters ?? new NotebookParameters();
        if (!overrides.IsEmpty)
        {
            var parametersCell = elements.FirstOrDefault(e => e.KernelName != "markdown" && IsParametersCell(e.Contents))
                ?? throw new ArgumentException($"Notebook '{path}' has no parameters cell ('{ParametersMarker}'), so {string.Join(", ", overrides.Assignments().Select(a => a.Name))} cannot be set.");
            var missing = overrides.MissingFrom(parametersCell.Contents).ToList();
            if (missing.Count > 0) throw new ArgumentException($"The parameters cell of '{path}' has no {string.Join(", ", missing)} to set.");
        }

        // Process-wide state (working directory, formatter, embedded-only switch): one notebook at a time.
        await OneAtATime.WaitAsync(cancel);
        string previousDirectory = Environment.CurrentDirectory;
        bool previousEmbedded = FigureSetup.EmbeddedOnly;
        bool previousTf32 = Model.Devices.AllowTf32;
        var previousProgress = Progress.AmbientProgress.Default;
        var total = Stopwatch.StartNew();
        var cells = new List<CellRun>();
        try
        {
            // As in VS Code, relative paths in cells are relative to the notebook's folder.
            Environment.CurrentDirectory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
            if (options.EmbeddedOnly) FigureSetup.EmbeddedOnly = true;
            if (options.AllowTf32) Model.Devices.AllowTf32 = true;
            Progress.AmbientProgress.Default = CellProgress(options.WorkProgress);
            using var kernel = CreateKernel();
            for (int i = 0; i < elements.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var element = elements[i];
                bool markdown = element.KernelName == "markdown";
                if (markdown)
                {
                    cells.Add(new CellRun(i + 1, CellKind.Markdown, element.Contents, Array.Empty<CellOutput>(), TimeSpan.Zero));
                    continue;
                }
                string cellTag = $"[{i + 1}/{elements.Count}]";
                options.Progress?.Report($"{cellTag} code {FirstLine(element.Contents)}");
                bool setup = IsSetupCell(element.Contents);
                string? exercise = Notebooks.Solutions.ExerciseOf(element.Contents);
                string? solution = exercise is null ? null : solutions?[exercise];
                var clock = Stopwatch.StartNew();
                var result = await kernel.SendAsync(new SubmitCode(setup ? InProcessSetup() : solution ?? element.Contents, "csharp"), cancel);
                var (outputs, error) = Collect(result.Events);
                if (error is null && IsParametersCell(element.Contents) && overrides.Assignments() is { Count: > 0 } assignments)
                {
                    // Papermill's way: the notebook's values first, then the ones this run was given.
                    string code = string.Join("\n", assignments.Select(a => $"{a.Name} = {a.Code};"));
                    var set = await kernel.SendAsync(new SubmitCode(code, "csharp"), cancel);
                    var (_, setError) = Collect(set.Events);
                    error = setError is null ? null : $"setting the parameters ({code.Replace("\n", " ")}) failed: {setError}";
                    outputs = outputs.Append(new CellOutput("text/plain", $"Set by this run: {string.Join(", ", assignments.Select(a => $"{a.Name} = {a.Code}"))}\n")).ToList();
                }
                cells.Add(new CellRun(i + 1, CellKind.Code, solution ?? element.Contents, outputs, clock.Elapsed, error, setup) { Exercise = exercise, Solved = solution is not null });
                options.Progress?.Report($"{cellTag} {(error is null ? "done" : "FAILED")} in {NotebookReport.Seconds(clock.Elapsed)}");
                if (error is not null) break;
            }
            return new NotebookRun(path, TitleOf(elements) ?? System.IO.Path.GetFileNameWithoutExtension(path), cells, total.Elapsed, elements.Count);
        }
        finally
        {
            Environment.CurrentDirectory = previousDirectory;
            FigureSetup.EmbeddedOnly = previousEmbedded;
            Model.Devices.AllowTf32 = previousTf32;
            Progress.AmbientProgress.Default = previousProgress;
            OneAtATime.Release();
        }
    }

    /// <summary>The non-empty cells of a .dib file; a cell of a kernel other than C# or markdown is refused.</summary>
    internal static List<InteractiveDocumentElement> ReadCells(string path, string text)
    {
        var elements = CodeSubmission.Parse(text, KnownKernels()).Elements.Where(e => !string.IsNullOrWhiteSpace(e.Contents)).ToList();
        foreach (var e in elements)
            if (e.KernelName is not ("csharp" or "markdown" or "C#"))
                throw new ArgumentException($"Notebook '{path}' has a '{e.KernelName}' cell; the headless runner runs C# and markdown cells only.");
        return elements;
    }

    /// <summary>
    /// The kernels Polyglot Notebooks knows, so that a cell of another language becomes its own cell (and is refused)
    /// instead of being read as part of the C# cell before it.
    /// </summary>
    static KernelInfoCollection KnownKernels()
    {
        var kernels = new KernelInfoCollection
        {
            new("csharp", "C#", new[] { "c#", "C#", "cs" }),
            new("markdown", "Markdown", new[] { "md" }),
        };
        foreach (var name in new[] { "fsharp", "pwsh", "javascript", "html", "sql", "kql", "mermaid", "value", "http", "python", "r" })
            kernels.Add(new Microsoft.DotNet.Interactive.Documents.KernelInfo(name));
        return kernels;
    }

    public static bool IsSetupCell(string source) =>
        source.TrimStart().StartsWith(SetupMarker, StringComparison.Ordinal);

    public static bool IsParametersCell(string source) =>
        source.TrimStart().StartsWith(ParametersMarker, StringComparison.Ordinal);

    /// <summary>
    /// Progress inside cells, as in VS Code: one line per cell in the cell's output, updated in place (the report keeps its last
    /// state), and every report passed on to <paramref name="also"/> (the command line's stderr).
    /// </summary>
    static Progress.CellProgress CellProgress(IProgress<Progress.WorkProgress>? also) => new(
        () => KernelInvocationContext.Current?.Command,
        () =>
        {
            if (KernelInvocationContext.Current is null) return _ => { };
            var shown = Kernel.display("", PlainTextFormatter.MimeType);
            return text => shown.Update(text);
        }) { Also = also };

    static CompositeKernel CreateKernel()
    {
        var csharp = new CSharpKernel().UseKernelHelpers().UseValueSharing();
        var kernel = new CompositeKernel { csharp };
        kernel.DefaultKernelName = csharp.Name;
        // The report page loads plotly.js once, so figures render as bare fragments here.
        Formatter.Register<Figure>((figure, writer) => writer.Write(FigureHtml.Fragment(figure)), HtmlFormatter.MimeType);
        Formatter.Register<Workshop.CheckResult>((check, writer) => writer.Write(check.Html()), HtmlFormatter.MimeType);
        return kernel;
    }

    /// <summary>
    /// The setup cell's replacement: references to the workbook's assemblies as this process loaded them (the same
    /// files, so types are shared with the host), instead of NuGet and the generated script.
    /// </summary>
    static string InProcessSetup()
    {
        var assemblies = new[] { typeof(Figure).Assembly, typeof(TorchSharp.torch).Assembly, typeof(Microsoft.ML.Tokenizers.Tokenizer).Assembly };
        return string.Join("\n", assemblies.Select(a => $"#r \"{a.Location}\"")) + "\n";
    }

    static (IReadOnlyList<CellOutput> Outputs, string? Error) Collect(IEnumerable<KernelEvent> events)
    {
        var outputs = new List<CellOutput>();
        var shown = new Dictionary<string, int>(StringComparer.Ordinal);
        string? error = null;
        foreach (var e in events)
        {
            switch (e)
            {
                case StandardOutputValueProduced o:
                    AddText(outputs, Plain(o.FormattedValues), false);
                    break;
                case StandardErrorValueProduced o:
                    AddText(outputs, Plain(o.FormattedValues), true);
                    break;
                case DisplayEvent d:
                    var html = d.FormattedValues.FirstOrDefault(f => f.MimeType == HtmlFormatter.MimeType);
                    var chosen = html ?? d.FormattedValues.FirstOrDefault();
                    if (chosen is null) break;
                    var output = new CellOutput(chosen.MimeType, chosen.Value) { IsDisplayed = true };
                    // An updated value (a progress line) replaces what it showed before: the report keeps its last state.
                    if (d.ValueId is { } id && shown.TryGetValue(id, out int at)) outputs[at] = output;
                    else
                    {
                        if (d.ValueId is { } newId) shown[newId] = outputs.Count;
                        outputs.Add(output);
                    }
                    break;
                case CommandFailed f:
                    error = f.Exception is { } ex ? Describe(ex) : f.Message;
                    break;
            }
        }
        return (outputs, error);
    }

    static string Describe(Exception e)
    {
        while (e is TargetInvocationException { InnerException: { } inner }) e = inner;
        return $"{e.GetType().Name}: {e.Message}";
    }

    static string Plain(IEnumerable<FormattedValue> values) =>
        values.FirstOrDefault(v => v.MimeType == PlainTextFormatter.MimeType)?.Value ?? values.FirstOrDefault()?.Value ?? "";

    /// <summary>Consecutive standard-output writes become one block.</summary>
    static void AddText(List<CellOutput> outputs, string text, bool stderr)
    {
        if (outputs.Count > 0 && outputs[^1] is { MimeType: "text/plain", IsDisplayed: false } last && last.IsStandardError == stderr)
            outputs[^1] = last with { Value = last.Value + text };
        else outputs.Add(new CellOutput("text/plain", text, stderr));
    }

    static string FirstLine(string text)
    {
        var line = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "";
        return line.Length > 70 ? line[..70] + "…" : line;
    }

    /// <summary>The first markdown heading, else the file name.</summary>
    static string? TitleOf(IEnumerable<InteractiveDocumentElement> elements)
    {
        foreach (var e in elements.Where(e => e.KernelName == "markdown"))
            foreach (var line in e.Contents.Split('\n'))
                if (line.StartsWith("# ", StringComparison.Ordinal)) return line[2..].Trim();
        return null;
    }
}
