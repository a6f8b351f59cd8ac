using Workbook.Checkpoints;
using Workbook.Evaluation;
using Workbook.Hub;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Progress;
using Workbook.Tasks;

namespace Workbook.Experiments;

/// <summary>
/// The settings a reader edits in a notebook's parameters cell, which <c>workbook notebook run</c> and <c>reproduce</c>
/// override from flags or <c>WORKBOOK_*</c> variables: the model (null: the paper's when cached, else the built-in
/// stand-in), the device (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>, <c>auto</c>), the dtype (float32; bfloat16 or float16
/// on CUDA), prompts per dataset part (null: the paper's count for the paper's model, a quick count otherwise) and the
/// batch size (null: the task's).
/// </summary>
public sealed record FigureParameters(string? Model = null, string Device = "cpu", string DType = "float32", int? Prompts = null, int? BatchSize = null)
{
    /// <summary>Checks every value before anything is loaded; a clear error names the one that is wrong.</summary>
    public (TorchSharp.torch.Device Device, TorchSharp.torch.ScalarType DType) Validate()
    {
        if (Prompts is < 1) throw new ArgumentException($"Prompts must be at least 1 per dataset part, got {Prompts}.");
        if (BatchSize is < 1) throw new ArgumentException($"The batch size must be at least 1, got {BatchSize}.");
        var dtype = Precision.Parse(DType);
        var device = Devices.Parse(Device);
        Precision.EnsureUsable(dtype, device);
        return (device, dtype);
    }
}

/// <summary>
/// What a paper figure is computed on: the paper's model, task and circuit when the model is available locally,
/// otherwise an embedded model that needs no download (with a <see cref="Note"/> saying so and how to get the real
/// one). The code path is the same either way; only the names differ.
/// </summary>
public sealed class FigureSetup : IDisposable
{
    /// <summary>
    /// Use the embedded fallback even when the paper's model is in the hub cache (tests and quick headless runs set
    /// this; so does the environment variable <c>WORKBOOK_EMBEDDED_ONLY=1</c>).
    /// </summary>
    public static bool EmbeddedOnly { get; set; } = Environment.GetEnvironmentVariable("WORKBOOK_EMBEDDED_ONLY") == "1";

    public required LoadedModel Loaded { get; init; }
    /// <summary>The model's name in reports and figures: an alias, a hub id, an embedded name or a folder's name, never a snapshot hash.</summary>
    public required string ModelName { get; init; }
    public required TaskDefinition Task { get; init; }
    public required CircuitChoice Circuit { get; init; }
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    /// <summary>True when this is the paper's model, or a random-weights stand-in with its configuration (figures then show the paper's reported values).</summary>
    public required bool IsPaperModel { get; init; }
    /// <summary>Why the paper's setting is not used (null when it is).</summary>
    public string? Note { get; init; }
    public int Seed { get; init; }
    /// <summary>Progress of this setup's evaluations; null: <see cref="AmbientProgress.Default"/> (a notebook's cell line).</summary>
    public IProgress<WorkProgress>? Progress { get; init; }
    /// <summary>Prompts per forward pass for this setup's evaluations (null: the task's default).</summary>
    public int? BatchSize { get; init; }
    /// <summary>Share clean runs, patch-source activations and dataset means across each evaluation's methodologies (default; see <see cref="EvaluationCache"/>).</summary>
    public bool ReuseWork { get; init; } = true;

    public int PromptCount => Parts.Sum(p => p.Count);

    /// <summary>Set when the model is a random-weights stand-in: every figure made from this setup says so.</summary>
    public RandomWeightsInfo? RandomWeights => Loaded.RandomWeights;

    /// <summary>The model's name and whether its weights are random, carried into results and figure titles.</summary>
    public ModelLabel Label => new(ModelName, RandomWeights is not null);

    /// <summary>
    /// The setup for one of the paper's tasks. <paramref name="parameters"/>'s model null: the paper's model when its
    /// checkpoint is already in the hub cache (nothing is downloaded), else <paramref name="fallback"/>. A named model is
    /// loaded as <see cref="ModelLoader"/> does (downloading a hub model on first use). Prompts per part: the parameters'
    /// count, else <paramref name="paperPrompts"/> for the paper's model and <paramref name="fallbackPrompts"/> for the stand-in.
    /// </summary>
    public static FigureSetup For(string task, FallbackSetup fallback, FigureParameters? parameters = null, int? paperPrompts = null, int? fallbackPrompts = null,
        int seed = 0, IProgress<WorkProgress>? progress = null, int? fallbackPartsPerOrder = null)
    {
        parameters ??= new FigureParameters();
        var (_, dtype) = parameters.Validate();
        var paperTask = KnownTasks.Get(task);
        var steps = new ProgressTracker(AmbientProgress.Or(progress), "setup", 2, "steps");
        var load = new LoadOptions { Device = parameters.Device, DType = dtype };
        LoadedModel? loaded = null;
        string? reason = null;
        string? model = parameters.Model;
        steps.Start(model is null && EmbeddedOnly ? $"loading {fallback.Model}" : $"loading {model ?? paperTask.PaperModel}");
        if (model is not null) loaded = ModelLoader.LoadWithTokenizer(model, load);
        else if (EmbeddedOnly) reason = "embedded models only were asked for (WORKBOOK_EMBEDDED_ONLY)";
        else loaded = TryLoadCached(paperTask.PaperModel, load, out reason);

        if (loaded is not null)
        {
            bool isPaper = string.Equals(model ?? paperTask.PaperModel, paperTask.PaperModel, StringComparison.OrdinalIgnoreCase)
                           || (loaded.RandomWeights is { } r && string.Equals(r.Like, paperTask.PaperModel, StringComparison.OrdinalIgnoreCase));
            var circuit = CircuitChoice.Parse(isPaper ? paperTask.PaperCircuit : fallback.Circuit);
            steps.Advance(1, "preparing prompts");
            var paper = Create(loaded, paperTask, circuit, parameters.Prompts ?? paperPrompts, seed, progress, isPaper, null, parameters.BatchSize);
            steps.Complete();
            return paper;
        }

        var fallbackTask = KnownTasks.Get(fallback.Task);
        steps.Working($"loading {fallback.Model}");
        var fallbackModel = ModelLoader.LoadWithTokenizer(fallback.Model, load);
        string note = $"The paper's model '{paperTask.PaperModel}' is not on this machine ({reason}), so this runs on the embedded model " +
                      $"'{fallback.Model}'{(fallbackTask.Name == paperTask.Name ? "" : $" and its task '{fallbackTask.Name}'")} with circuit '{fallback.Circuit}'" +
                      $"{(fallback.Why is null ? "" : $": {fallback.Why}")}. The numbers are not the paper's. To run the paper's setting, download the model once " +
                      $"with `workbook models pull {paperTask.PaperModel}` (dotnet run --project lib/Workbook.Cli -- models pull {paperTask.PaperModel}) and rerun.";
        steps.Advance(1, "preparing prompts");
        var setup = Create(fallbackModel, fallbackTask, CircuitChoice.Parse(fallback.Circuit), parameters.Prompts ?? fallbackPrompts, seed, progress, false, note,
            parameters.BatchSize);
        steps.Complete();
        return fallbackPartsPerOrder is int k ? setup.WithFirstParts(k) : setup;
    }

    /// <summary>A setup of the reader's choice: any model the loader knows, any task and circuit (official name, family or file).</summary>
    public static FigureSetup Custom(string model, string task, string circuit, int? prompts = null, int seed = 0, IProgress<WorkProgress>? progress = null,
        FigureParameters? parameters = null)
    {
        parameters = (parameters ?? new FigureParameters()) with { Model = model, Prompts = prompts ?? parameters?.Prompts };
        var (_, dtype) = parameters.Validate();
        var definition = KnownTasks.Get(task);
        var choice = CircuitChoice.Parse(circuit);
        var loaded = ModelLoader.LoadWithTokenizer(model, new LoadOptions { Device = parameters.Device, DType = dtype });
        bool isPaper = string.Equals(model, definition.PaperModel, StringComparison.OrdinalIgnoreCase)
                       || (loaded.RandomWeights is { } r && string.Equals(r.Like, definition.PaperModel, StringComparison.OrdinalIgnoreCase));
        return Create(loaded, definition, choice, parameters.Prompts, seed, progress, isPaper, null, parameters.BatchSize);
    }

    static FigureSetup Create(LoadedModel loaded, TaskDefinition task, CircuitChoice circuit, int? prompts, int seed,
        IProgress<WorkProgress>? progress, bool isPaper, string? note, int? batchSize)
    {
        try
        {
            return new FigureSetup
            {
                Loaded = loaded, ModelName = loaded.DisplayName, Task = task, Circuit = circuit, Parts = PrepareParts(task, loaded, seed, prompts),
                IsPaperModel = isPaper, Note = note, Seed = seed, Progress = progress, BatchSize = batchSize,
            };
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Only the first <paramref name="perOrder"/> parts of each group (IOI: the first templates of each name order,
    /// "ABBA-0", "ABBA-1", ...), to keep quick runs quick.
    /// </summary>
    public FigureSetup WithFirstParts(int perOrder)
    {
        if (perOrder < 1) throw new ArgumentException($"Keep at least one part per group, not {perOrder}.");
        var kept = Parts.GroupBy(p => p.Name.Split('-')[0]).SelectMany(g => g.Take(perOrder)).ToArray();
        return new FigureSetup
        {
            Loaded = Loaded, ModelName = ModelName, Task = Task, Circuit = Circuit, Parts = kept, IsPaperModel = IsPaperModel,
            Note = Note is null ? null : Note + $" For speed, only the first {perOrder} dataset part(s) per name order are used.",
            Seed = Seed, Progress = Progress, BatchSize = BatchSize, ReuseWork = ReuseWork,
        };
    }

    /// <summary>The same setup with work sharing on or off (benchmarks compare the two).</summary>
    public FigureSetup WithReuse(bool reuse) => new()
    {
        Loaded = Loaded, ModelName = ModelName, Task = Task, Circuit = Circuit, Parts = Parts, IsPaperModel = IsPaperModel, Note = Note,
        Seed = Seed, Progress = Progress, BatchSize = BatchSize, ReuseWork = reuse,
    };

    /// <summary>The paper's model from the hub cache only (never a download); null with the reason when it is not there.</summary>
    static LoadedModel? TryLoadCached(string spec, LoadOptions load, out string? reason)
    {
        reason = null;
        try
        {
            return ModelLoader.LoadWithTokenizer(spec, load with { Hub = HubOptions.FromEnvironment() with { Offline = true } });
        }
        catch (Exception e) when (e is HubException or CheckpointException or FileNotFoundException or DirectoryNotFoundException)
        {
            reason = "not in the hub cache";
            return null;
        }
    }

    /// <summary>
    /// The task's prompts for this model: generated with the seed, the paper's subset or <paramref name="prompts"/> per part,
    /// tokenized. A random-weights stand-in without its real tokenizer gets token-id prompts of the task's real shape
    /// (<see cref="TokenIdPrompts"/>).
    /// </summary>
    public static IReadOnlyList<TokenizedDataset> PrepareParts(TaskDefinition task, LoadedModel loaded, int seed, int? prompts)
    {
        if (!task.PreTokenized && loaded.Tokenizer is null && loaded.RandomWeights is not null && TokenIdPrompts.Supports(task))
            return TokenIdPrompts.For(task, loaded.Model.Config, seed, prompts);
        if (!task.PreTokenized && loaded.Tokenizer is null)
            throw new ArgumentException($"Task '{task.Name}' has text prompts, but model '{loaded.Source.Spec}' has no tokenizer ({loaded.TokenizerNote}).");
        return task.Tokenize(task.GenerateForEvaluation(loaded.Tokenizer, seed, prompts), loaded.Tokenizer);
    }

    /// <summary>An evaluation request over this setup's prompts and circuit.</summary>
    public EvaluationRequest Request(IReadOnlyList<Patching.Methodology> methodologies, IReadOnlyList<MetricKind> metrics, int? batchSize = null, CircuitChoice? circuit = null,
        EvaluationCache? cache = null) => new()
    {
        Model = Loaded.Model, Task = Task, Parts = Parts, Circuit = circuit ?? Circuit, Methodologies = methodologies, Metrics = metrics,
        BatchSize = batchSize ?? BatchSize ?? Task.DefaultBatchSize, Progress = Progress, Cache = cache, ModelLabel = Label, ReuseWork = ReuseWork,
    };

    /// <summary>One line for a notebook: model, device, task, circuit, prompts, and the notes when the paper's model is absent or the weights are random.</summary>
    public string Describe()
    {
        var m = Loaded.Model;
        string text = $"Model '{ModelName}' ({m.Config.NLayers} layers, {Precision.Name(m.DType)} on {m.Device.type.ToString().ToLowerInvariant()}), task '{Task.Name}', " +
                      $"circuit '{Circuit.Name}', {PromptCount} prompts in {Parts.Count} part(s).";
        if (RandomWeights is { } r)
            text += "\n" + Wrap($"RANDOM WEIGHTS: '{ModelName}' is a stand-in with {r.Like}'s exact configuration and seeded random weights (seed {r.Seed}), " +
                                $"written by `workbook models random`. Timings and memory are the paper's; the numbers mean nothing about the real model." +
                                (Loaded.Tokenizer is null && !Task.PreTokenized ? " Its tokenizer is not on this machine, so the prompts are token ids of the task's real lengths." : ""), 110);
        if (Note is not null) text += "\n" + Wrap($"NOTE: {Note}", 110);
        return text;
    }

    /// <summary>Breaks text into lines of at most <paramref name="width"/> characters at spaces (notebook outputs do not wrap).</summary>
    static string Wrap(string text, int width)
    {
        var lines = new List<string>();
        var line = new System.Text.StringBuilder();
        // Spaces inside `backticks` do not break lines, so commands stay whole (and can be copied).
        foreach (var word in System.Text.RegularExpressions.Regex.Split(text, " (?=(?:[^`]*`[^`]*`)*[^`]*$)"))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear().Append("      ");
            }
            if (line.Length > 0 && !line.ToString().EndsWith(' ')) line.Append(' ');
            line.Append(word);
        }
        lines.Add(line.ToString());
        return string.Join("\n", lines);
    }

    public void Dispose() => Loaded.Dispose();
}

/// <summary>The embedded setting a figure falls back to when the paper's model is absent, and why it is a fair stand-in.</summary>
public sealed record FallbackSetup(string Model, string Task, string Circuit, string? Why = null)
{
    /// <summary>The toy IOI model with its node and edge circuits (family <c>toy-ioi</c>).</summary>
    public static FallbackSetup ToyIoi(string? why = null) => new("toy-ioi", "ioi", "toy-ioi", why);

    /// <summary>The toy Docstring model on the Docstring task's own prompts, with its node and edge circuits (family <c>toy-docstring</c>).</summary>
    public static FallbackSetup ToyDocstring(string? why = null) => new("toy-docstring", "docstring", "toy-docstring", why);

    /// <summary>The toy Sports model on its made-up players (task <c>toy-sports</c>), with its node and edge circuits (family <c>toy-sports</c>).</summary>
    public static FallbackSetup ToySports(string? why = null) => new("toy-sports", "toy-sports", "toy-sports", why);
}
