using System.CommandLine;
using Workbook.Figures;
using Workbook.Notebooks;
using Workbook.Progress;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook notebook run FILE.dib --out report.html</c>: runs a notebook headless and writes an HTML report.</summary>
public static class NotebookCommand
{
    public static Command Build(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var file = new Argument<string>("notebook") { Description = "The .dib notebook to run." };
        var output = new Option<string?>("--out", "-o") { Description = "Write an HTML report of the cells, their outputs and figures to this file." };
        var png = new Option<string?>("--png") { Description = "Also render the report to this PNG with headless Chromium." };
        var plotly = new Option<string>("--plotly") { Description = "inline (one self-contained file, default) or beside (plotly.min.js next to the report).", DefaultValueFactory = _ => "inline" };
        var embedded = EmbeddedOnlyOption();
        var parameters = new ParameterOptions(withModel: true);
        var solved = new Option<bool>("--solved")
        {
            Description = "Run each exercise's solution (solutions/NAME.dib beside the notebook) instead of its stub, as CI does for the workshop notebooks.",
        };
        var run = new Command("run", "Run a notebook cell by cell (in-process C# kernel); stop at the first failing cell with its message and a non-zero exit code.")
        {
            file, output, png, plotly, embedded, solved,
        };
        parameters.AddTo(run);
        run.SetAction(async (parse, cancel) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var source = parse.GetValue(plotly) switch
            {
                "inline" => PlotlySource.Inline,
                "beside" => PlotlySource.Beside,
                var other => throw new ArgumentException($"Unknown --plotly '{other}'. Use inline or beside."),
            };
            string? pngPath = parse.GetValue(png);
            string? report = parse.GetValue(output);
            if (pngPath is not null && report is null) throw new ArgumentException("--png renders the report: give --out as well.");
            using var progress = new RunProgress(error, "");
            var result = await NotebookRunner.RunAsync(parse.GetValue(file)!, parameters.Options(parse, environment) with
            {
                EmbeddedOnly = parse.GetValue(embedded), Progress = progress.Lines, WorkProgress = progress.Work,
                Solutions = parse.GetValue(solved) ? Solutions.For(parse.GetValue(file)!) : null,
            }, cancel);
            progress.Dispose();
            if (report is not null)
            {
                NotebookReport.Write(result, report, source);
                error.WriteLine($"report: {Util.ControlCharacters.Escape(report)}");
                if (pngPath is not null)
                {
                    Chromium.Screenshot(report, pngPath, 1200, 900);
                    error.WriteLine($"png: {Util.ControlCharacters.Escape(pngPath)}");
                }
            }
            if (result.Failure is { } failure)
            {
                error.WriteLine($"error: cell {failure.Number} of {CliErrors.Printable(Path.GetFileName(result.Path))} failed: {CliErrors.Printable(failure.Error ?? "")}");
                return CliErrors.Failure;
            }
            parse.InvocationConfiguration.Output.WriteLine($"{Util.ControlCharacters.Escape(Path.GetFileName(result.Path))}: {result.Cells.Count} cells ran without errors in {NotebookReport.Seconds(result.Elapsed)}");
            return 0;
        });
        return new Command("notebook", "Run the workbook's .dib notebooks headless.") { run };
    }

    public static Option<bool> EmbeddedOnlyOption() => new("--embedded-only")
    {
        Description = "Use the embedded models for every figure even when the paper's models are in the hub cache (fast; also WORKBOOK_EMBEDDED_ONLY=1).",
    };

    /// <summary>
    /// The options that override a notebook's parameters cell (<see cref="NotebookParameters"/>), shared by <c>notebook run</c>
    /// and <c>reproduce</c>; each falls back to its <c>WORKBOOK_*</c> variable, and all are checked before any cell runs.
    /// </summary>
    public sealed class ParameterOptions(bool withModel)
    {
        readonly Option<string?> _model = new("--model", "-m") { Description = "The notebook's Model parameter: a model to run instead of the paper's (WORKBOOK_MODEL)." };
        readonly Option<string?> _device = new("--device") { Description = "The notebooks' Device: cpu, cuda, cuda:N or auto (WORKBOOK_DEVICE; default: the notebook's, cpu)." };
        readonly Option<string?> _dtype = new("--dtype") { Description = "The notebooks' DType: float32, or bfloat16 / float16 on CUDA (WORKBOOK_DTYPE)." };
        readonly Option<int?> _prompts = new("--prompts", "-n") { Description = "Prompts per dataset part (WORKBOOK_PROMPTS; default: the paper's for the paper's model, a quick count for the built-in stand-ins)." };
        readonly Option<int?> _batchSize = new("--batch-size") { Description = "Prompts per forward pass (WORKBOOK_BATCH_SIZE; default: the task's)." };
        readonly Option<bool> _tf32 = CommonOptions.AllowTf32();

        public void AddTo(Command command)
        {
            if (withModel) command.Options.Add(_model);
            foreach (var o in new Option[] { _device, _dtype, _prompts, _batchSize, _tf32 }) command.Options.Add(o);
        }

        /// <summary>Runner options with the parameters from flags, else the environment; checked (a missing CUDA, a bad dtype or count fails here).</summary>
        public NotebookRunOptions Options(ParseResult parse, Func<string, string?> environment)
        {
            var flags = new NotebookParameters(withModel ? parse.GetValue(_model) : null, parse.GetValue(_device), parse.GetValue(_dtype),
                parse.GetValue(_prompts), parse.GetValue(_batchSize));
            var fromEnvironment = NotebookParameters.FromEnvironment(environment);
            if (!withModel) fromEnvironment = fromEnvironment with { Model = null };
            var parameters = flags.Or(fromEnvironment);
            parameters.Validate();
            bool tf32 = parse.GetValue(_tf32) || environment("WORKBOOK_ALLOW_TF32") == "1";
            return new NotebookRunOptions { Parameters = parameters.IsEmpty ? null : parameters, AllowTf32 = tf32 };
        }
    }

    /// <summary>
    /// What a headless run shows on stderr: the runner's per-cell lines and the progress inside cells, through one printer
    /// (a bar on a terminal, lines elsewhere, a heartbeat naming the running cell when nothing else was said for 8 s).
    /// </summary>
    public sealed class RunProgress(TextWriter error, string indent) : IDisposable
    {
        readonly ProgressPrinter _printer = ProgressPrinter.ForStandardError(error, indent + "    ");

        public IProgress<string> Lines => new SynchronousProgress<string>(line =>
        {
            _printer.Prefix = "";
            _printer.Line(indent + line);
            _printer.Prefix = indent + "    ";
            _printer.Activity = line.Trim();
        });

        public IProgress<WorkProgress> Work => _printer;

        public void Dispose() => _printer.Dispose();
    }

    /// <summary>Progress lines on stderr, written as they come (cell text and notebook names escaped: they come from the notebook).</summary>
    public sealed class LineProgress(TextWriter error) : IProgress<string>
    {
        public void Report(string value) => error.WriteLine(CliErrors.Printable(value));
    }
}
