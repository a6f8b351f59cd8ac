using Workbook.Checkpoints;
using Workbook.Evaluation;
using Workbook.Hub;
using Workbook.Metrics;
using Workbook.Tasks;

namespace Workbook.Experiments;

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
    /// <summary>The model's name as given to <see cref="ModelLoader"/> (an alias, an embedded name or a folder).</summary>
    public required string ModelName { get; init; }
    public required TaskDefinition Task { get; init; }
    public required CircuitChoice Circuit { get; init; }
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    /// <summary>True when this is the paper's model (figures then show the paper's reported values).</summary>
    public required bool IsPaperModel { get; init; }
    /// <summary>Why the paper's setting is not used (null when it is).</summary>
    public string? Note { get; init; }
    public int Seed { get; init; }
    public IProgress<EvaluationProgress>? Progress { get; init; }

    public int PromptCount => Parts.Sum(p => p.Count);

    /// <summary>
    /// The setup for one of the paper's tasks. <paramref name="model"/> null: the paper's model when its checkpoint
    /// is already in the hub cache (nothing is downloaded), else <paramref name="fallback"/>. A named model is loaded
    /// as <see cref="ModelLoader"/> does (downloading a hub model on first use).
    /// </summary>
    public static FigureSetup For(string task, FallbackSetup fallback, string? model = null, int? paperPrompts = null, int? fallbackPrompts = null,
        int seed = 0, IProgress<EvaluationProgress>? progress = null, int? fallbackPartsPerOrder = null)
    {
        var paperTask = KnownTasks.Get(task);
        LoadedModel? loaded = null;
        string? reason = null;
        if (model is not null) loaded = ModelLoader.LoadWithTokenizer(model);
        else if (EmbeddedOnly) reason = "embedded models only were asked for (WORKBOOK_EMBEDDED_ONLY)";
        else loaded = TryLoadCached(paperTask.PaperModel, out reason);

        if (loaded is not null)
        {
            bool isPaper = string.Equals(model ?? paperTask.PaperModel, paperTask.PaperModel, StringComparison.OrdinalIgnoreCase);
            var circuit = CircuitChoice.Parse(isPaper ? paperTask.PaperCircuit : fallback.Circuit);
            return Create(loaded, model ?? paperTask.PaperModel, paperTask, circuit, paperPrompts, seed, progress, isPaper, null);
        }

        var fallbackTask = KnownTasks.Get(fallback.Task);
        var fallbackModel = ModelLoader.LoadWithTokenizer(fallback.Model);
        string note = $"The paper's model '{paperTask.PaperModel}' is not on this machine ({reason}), so this runs on the embedded model " +
                      $"'{fallback.Model}'{(fallbackTask.Name == paperTask.Name ? "" : $" and its task '{fallbackTask.Name}'")} with circuit '{fallback.Circuit}'" +
                      $"{(fallback.Why is null ? "" : $": {fallback.Why}")}. The numbers are not the paper's. To run the paper's setting, download the model once " +
                      $"with `workbook models pull {paperTask.PaperModel}` (dotnet run --project lib/Workbook.Cli -- models pull {paperTask.PaperModel}) and rerun.";
        var setup = Create(fallbackModel, fallback.Model, fallbackTask, CircuitChoice.Parse(fallback.Circuit), fallbackPrompts, seed, progress, false, note);
        return fallbackPartsPerOrder is int k ? setup.WithFirstParts(k) : setup;
    }

    /// <summary>A setup of the reader's choice: any model the loader knows, any task and circuit (official name, family or file).</summary>
    public static FigureSetup Custom(string model, string task, string circuit, int? prompts = null, int seed = 0, IProgress<EvaluationProgress>? progress = null)
    {
        var definition = KnownTasks.Get(task);
        var choice = CircuitChoice.Parse(circuit);
        return Create(ModelLoader.LoadWithTokenizer(model), model, definition, choice, prompts, seed, progress,
            string.Equals(model, definition.PaperModel, StringComparison.OrdinalIgnoreCase), null);
    }

    static FigureSetup Create(LoadedModel loaded, string name, TaskDefinition task, CircuitChoice circuit, int? prompts, int seed,
        IProgress<EvaluationProgress>? progress, bool isPaper, string? note)
    {
        try
        {
            return new FigureSetup
            {
                Loaded = loaded, ModelName = name, Task = task, Circuit = circuit, Parts = PrepareParts(task, loaded, seed, prompts),
                IsPaperModel = isPaper, Note = note, Seed = seed, Progress = progress,
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
            Seed = Seed, Progress = Progress,
        };
    }

    /// <summary>The paper's model from the hub cache only (never a download); null with the reason when it is not there.</summary>
    static LoadedModel? TryLoadCached(string spec, out string? reason)
    {
        reason = null;
        try
        {
            return ModelLoader.LoadWithTokenizer(spec, new LoadOptions { Hub = HubOptions.FromEnvironment() with { Offline = true } });
        }
        catch (Exception e) when (e is HubException or CheckpointException or FileNotFoundException or DirectoryNotFoundException)
        {
            reason = "not in the hub cache";
            return null;
        }
    }

    /// <summary>The task's prompts for this model: generated with the seed, the paper's subset or <paramref name="prompts"/> per part, tokenized.</summary>
    public static IReadOnlyList<TokenizedDataset> PrepareParts(TaskDefinition task, LoadedModel loaded, int seed, int? prompts)
    {
        if (!task.PreTokenized && loaded.Tokenizer is null)
            throw new ArgumentException($"Task '{task.Name}' has text prompts, but model '{loaded.Source.Spec}' has no tokenizer ({loaded.TokenizerNote}).");
        return task.Tokenize(task.GenerateForEvaluation(loaded.Tokenizer, seed, prompts), loaded.Tokenizer);
    }

    /// <summary>An evaluation request over this setup's prompts and circuit.</summary>
    public EvaluationRequest Request(IReadOnlyList<Patching.Methodology> methodologies, IReadOnlyList<MetricKind> metrics, int? batchSize = null, CircuitChoice? circuit = null) => new()
    {
        Model = Loaded.Model, Task = Task, Parts = Parts, Circuit = circuit ?? Circuit, Methodologies = methodologies, Metrics = metrics,
        BatchSize = batchSize ?? Task.DefaultBatchSize, Progress = Progress,
    };

    /// <summary>One line for a notebook: model, task, circuit, prompts, and the note when the paper's model is absent.</summary>
    public string Describe() =>
        $"Model '{ModelName}' ({Loaded.Model.Config.NLayers} layers), task '{Task.Name}', circuit '{Circuit.Name}', {PromptCount} prompts in {Parts.Count} part(s)." +
        (Note is null ? "" : "\n" + Wrap($"NOTE: {Note}", 110));

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
