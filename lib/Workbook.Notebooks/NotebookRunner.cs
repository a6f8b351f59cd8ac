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
public sealed record CellOutput(string MimeType, string Value, bool IsStandardError = false);

/// <summary>A cell as it ran: its source, outputs, time, and the error when it failed.</summary>
public sealed record CellRun(int Number, CellKind Kind, string Source, IReadOnlyList<CellOutput> Outputs, TimeSpan Elapsed, string? Error = null, bool ReplacedSetup = false)
{
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
    /// <summary>One line per cell: "[3/12] code ..." (null: silent).</summary>
    public IProgress<string>? Progress { get; init; }
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
    static readonly SemaphoreSlim OneAtATime = new(1, 1);

    public static async Task<NotebookRun> RunAsync(string path, NotebookRunOptions? options = null, CancellationToken cancel = default)
    {
        options ??= new NotebookRunOptions();
        if (!File.Exists(path)) throw new FileNotFoundException($"Notebook '{path}' does not exist.", path);
        if (!path.EndsWith(".dib", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{path}' is not a .dib notebook; the runner reads Polyglot Notebooks' .dib format.");
        // A regular file of at most 64 MiB (a FIFO named *.dib would block the read forever).
        var document = CodeSubmission.Parse(Util.SafeRead.ReadAllText(path, 64L << 20, m => new ArgumentException(m)), KnownKernels());
        var elements = document.Elements.Where(e => !string.IsNullOrWhiteSpace(e.Contents)).ToList();
        foreach (var e in elements)
            if (e.KernelName is not ("csharp" or "markdown" or "C#"))
                throw new ArgumentException($"Notebook '{path}' has a '{e.KernelName}' cell; the headless runner runs C# and markdown cells only.");

        // Process-wide state (working directory, formatter, embedded-only switch): one notebook at a time.
        await OneAtATime.WaitAsync(cancel);
        string previousDirectory = Environment.CurrentDirectory;
        bool previousEmbedded = FigureSetup.EmbeddedOnly;
        var total = Stopwatch.StartNew();
        var cells = new List<CellRun>();
        try
        {
            // As in VS Code, relative paths in cells are relative to the notebook's folder.
            Environment.CurrentDirectory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
            if (options.EmbeddedOnly) FigureSetup.EmbeddedOnly = true;
            using var kernel = CreateKernel();
            for (int i = 0; i < elements.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var element = elements[i];
                bool markdown = element.KernelName == "markdown";
                options.Progress?.Report($"[{i + 1}/{elements.Count}] {(markdown ? "markdown" : "code")} {FirstLine(element.Contents)}");
                if (markdown)
                {
                    cells.Add(new CellRun(i + 1, CellKind.Markdown, element.Contents, Array.Empty<CellOutput>(), TimeSpan.Zero));
                    continue;
                }
                bool setup = IsSetupCell(element.Contents);
                var clock = Stopwatch.StartNew();
                var result = await kernel.SendAsync(new SubmitCode(setup ? InProcessSetup() : element.Contents, "csharp"), cancel);
                var (outputs, error) = Collect(result.Events);
                cells.Add(new CellRun(i + 1, CellKind.Code, element.Contents, outputs, clock.Elapsed, error, setup));
                if (error is not null) break;
            }
            return new NotebookRun(path, TitleOf(elements) ?? System.IO.Path.GetFileNameWithoutExtension(path), cells, total.Elapsed, elements.Count);
        }
        finally
        {
            Environment.CurrentDirectory = previousDirectory;
            FigureSetup.EmbeddedOnly = previousEmbedded;
            OneAtATime.Release();
        }
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

    static CompositeKernel CreateKernel()
    {
        var csharp = new CSharpKernel().UseKernelHelpers().UseValueSharing();
        var kernel = new CompositeKernel { csharp };
        kernel.DefaultKernelName = csharp.Name;
        // The report page loads plotly.js once, so figures render as bare fragments here.
        Formatter.Register<Figure>((figure, writer) => writer.Write(FigureHtml.Fragment(figure)), HtmlFormatter.MimeType);
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
                    if (chosen is not null) outputs.Add(new CellOutput(chosen.MimeType, chosen.Value));
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
        if (outputs.Count > 0 && outputs[^1] is { MimeType: "text/plain" } last && last.IsStandardError == stderr)
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
