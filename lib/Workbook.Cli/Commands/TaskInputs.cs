using System.CommandLine;
using System.Globalization;
using Workbook.Checkpoints;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Sharding;
using Workbook.Tasks;

namespace Workbook.Cli.Commands;

/// <summary>The options <c>eval</c> and <c>report</c> share, and the steps both take with them.</summary>
public sealed class EvaluationOptions
{
    public Option<string> Model { get; } = CommonOptions.Model();
    public Option<string> Device { get; } = CommonOptions.Device();
    public Option<string> DType { get; } = CommonOptions.DType();
    public Option<bool> Offline { get; } = CommonOptions.Offline();
    public Option<bool> AllowTf32 { get; } = CommonOptions.AllowTf32();
    public Option<bool> Json { get; } = CommonOptions.Json();
    public Option<string> Task { get; } = TaskInputs.Task();
    public Option<string?> Circuit { get; } = TaskInputs.Circuit();
    public Option<int?> Prompts { get; } = TaskInputs.Prompts();
    public Option<int?> BatchSize { get; } = TaskInputs.BatchSize();
    public Option<int> Seed { get; } = TaskInputs.Seed();
    public Option<string?> Dataset { get; } = TaskInputs.Dataset();
    public Option<string?> Csv { get; } = TaskInputs.Csv();
    public ShardOptions Sharding { get; } = new();

    /// <summary>Adds the shared options after the verb's own.</summary>
    public void AddTo(Command command)
    {
        foreach (Option o in new Option[] { Model, Task, Circuit, Prompts, BatchSize, Seed, Dataset, Csv, Device, DType, Offline, AllowTf32, Json })
            command.Options.Add(o);
        Sharding.AddTo(command);
    }

    /// <summary>The --shard asked for (null: the whole run); checked before anything is loaded.</summary>
    public Shard? ParseShard(ParseResult parse) => Sharding.Parse(parse, Csv);

    /// <summary>Writes a shard's part: the plan, how to render the merged result, and the rows of the shard's units.</summary>
    public void WritePart<TRender>(ParseResult parse, string command, Shard shard, EvaluationRequest request, EvaluationPlan plan, EvaluationResult result,
        LoadedModel loaded, TRender render)
    {
        var units = EvaluationShards.Split(plan, result, shard.Units(plan.Units, EvaluationUnits.Description));
        var resolved = new Dictionary<string, string>
        {
            ["task"] = plan.Task, ["circuit"] = plan.Circuit, ["batch size"] = plan.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["metrics"] = string.Join(",", plan.Metrics), ["methodologies"] = string.Join(",", plan.Methodologies.Select(m => m.Label)),
            ["prompts"] = $"{plan.Parts.Sum(p => p.Prompts)} in {plan.Parts.Count} part(s)",
        };
        var covers = new ShardCoverage
        {
            Units = "", Methodologies = units.Select(u => u.Methodology).Distinct().ToArray(),
            Prompts = ShardOptions.PromptRanges(units.Select(u => (u.Part, u.FirstPrompt, u.Prompts))), Seeds = new[] { parse.GetValue(Seed) },
        };
        Sharding.WritePart(parse, command, shard, plan.Units, loaded, request.Parts, resolved, covers, new EvaluationPart<TRender>(render, plan, units));
    }

    /// <summary>The task and circuit (checked before any model is loaded).</summary>
    public (TaskDefinition Task, CircuitChoice Circuit) TaskAndCircuit(ParseResult parse)
    {
        Devices.AllowTf32 = parse.GetValue(AllowTf32);
        var task = KnownTasks.Get(parse.GetValue(Task)!);
        return (task, CircuitChoice.Parse(parse.GetValue(Circuit) ?? task.PaperCircuit));
    }

    /// <summary>Loads the model (with its tokenizer) and prepares the task's prompts for it.</summary>
    public (LoadedModel Model, IReadOnlyList<TokenizedDataset> Parts) Load(ParseResult parse, TaskDefinition task)
    {
        var options = CommonOptions.LoadOptions(parse, Device, DType, Offline);
        Precision.EnsureUsable(options.DType, Devices.Parse(options.Device)); // before the model is read
        var loaded = ModelLoader.LoadWithTokenizer(parse.GetValue(Model)!, options);
        if (loaded.RandomWeights is { } random) parse.InvocationConfiguration.Error.WriteLine($"note: '{loaded.DisplayName}' is {random}.");
        try
        {
            return (loaded, TaskInputs.Prepare(task, loaded, parse.GetValue(Dataset), parse.GetValue(Seed), parse.GetValue(Prompts)));
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>The evaluation request; progress goes to <paramref name="progress"/> (the command's stderr printer).</summary>
    public EvaluationRequest Request(ParseResult parse, HookedTransformer model, TaskDefinition task, IReadOnlyList<TokenizedDataset> parts,
        CircuitChoice circuit, IReadOnlyList<Methodology> methodologies, IReadOnlyList<MetricKind> metrics, IProgress<WorkProgress>? progress) => new()
    {
        Model = model, Task = task, Parts = parts, Circuit = circuit, Methodologies = methodologies, Metrics = metrics,
        BatchSize = parse.GetValue(BatchSize) ?? task.DefaultBatchSize, Progress = progress,
    };

    /// <summary>Writes the rows to the --csv file, when one was given.</summary>
    public void WriteCsv(ParseResult parse, VerbOutputs outputs)
    {
        if (parse.GetValue(Csv) is string path) EvaluationExport.WriteFile(path, outputs.Csv!());
    }
}

/// <summary>A shard's part of an eval or report run: how the merged result is shown, the plan, and the shard's units.</summary>
public sealed record EvaluationPart<TRender>(TRender Render, EvaluationPlan Plan, IReadOnlyList<EvaluationUnitResult> Units);

/// <summary>Options and helpers shared by <c>eval</c> and <c>report</c>: model, task, prompts, circuit, progress.</summary>
public static class TaskInputs
{
    public static Option<string> Task() => new("--task", "-t")
    {
        Description = $"Task: {string.Join(", ", KnownTasks.All.Select(t => t.Name))}.",
        Required = true,
    };

    public static Option<string?> Circuit() => new("--circuit", "-c")
    {
        Description = "An official circuit (see `workbook circuit`), a family with node and edge variants (ioi, docstring), or a circuit JSON file. Default: the task's circuit.",
    };

    public static Option<int?> Prompts() => new Option<int?>("--prompts", "-n")
    {
        Description = "Prompts per dataset part (IOI: per template and order). Default: the paper's number.",
    }.Within(1, OptionLimits.MaxPrompts, "prompts per dataset part");

    public static Option<int?> BatchSize() => new Option<int?>("--batch-size")
    {
        Description = "Prompts per forward pass (also the batch of mean-batch ablation). Default: the task's (Sports 10, Tracr 200, others 50).",
    }.Within(1, OptionLimits.MaxBatch, "prompts per forward pass");

    public static Option<int?> CircuitsPerForward() => new Option<int?>("--circuits-per-forward")
    {
        Description = "Throughput mode for sweeps (ACDC's thresholds, a curve's circuit sizes): circuits evaluated together in one forward pass, " +
                      "stacked along the batch; 1 evaluates one circuit at a time. Results are the same. Default: 1 on the CPU (where stacking measured no clear gain), " +
                      "elsewhere as many as fit a quarter of the free memory (at most 32).",
    }.Within(1, OptionLimits.MaxCircuitsPerForward, "circuits stacked in one forward pass");

    public static Option<int> Seed() => new("--seed")
    {
        Description = "Seed of the dataset generator (0 regenerates the paper's IOI and Docstring files) and of the bootstrap.",
        DefaultValueFactory = _ => 0,
    };

    public static Option<string?> Dataset() => new("--dataset")
    {
        Description = "Use the prompts of an AutoCircuit-format JSON file instead of generating them.",
    };

    public static Option<string?> Csv() => new("--csv") { Description = "Also write the per-prompt rows to this CSV file." };

    /// <summary>An ablation-value option whose help lists every value the vocabulary knows.</summary>
    public static Option<string?> Ablation(string name, string lead) => new(name)
    {
        Description = $"{lead} One of:\n{AblationValue.Vocabulary.Describe()}",
    };

    /// <summary>A metric option whose help lists every metric the vocabulary knows.</summary>
    public static Option<string?> Metric(string lead) => new("--metric")
    {
        Description = $"{lead} Metrics:\n{MetricKind.Vocabulary.Describe()}",
    };

    /// <summary>The task's prompts for this model: generated (seeded) or imported, tokenized with the task's BOS and prefix rules.</summary>
    public static IReadOnlyList<TokenizedDataset> Prepare(TaskDefinition task, LoadedModel loaded, string? datasetFile, int seed, int? prompts)
    {
        if (prompts is < 1) throw new ArgumentException($"--prompts must be at least 1, got {prompts}.");
        var tokenizer = loaded.Tokenizer;
        string noTokenizer = $"Task '{task.Name}' has text prompts, but model '{loaded.Source.Spec}' has no tokenizer ({loaded.TokenizerNote ?? "none was found"}). " +
            "Use a model with a tokenizer, or a pre-tokenized dataset (--dataset).";
        if (tokenizer is null && datasetFile is null && !task.PreTokenized && loaded.RandomWeights is not null && TokenIdPrompts.Supports(task))
            return TokenIdPrompts.For(task, loaded.Model.Config, seed, prompts); // a stand-in without its tokenizer: prompts of the real shape
        if (tokenizer is null && datasetFile is null && !task.PreTokenized) throw new ArgumentException(noTokenizer);
        var parts = datasetFile is not null
            ? task.Select(new[] { AutoCircuitJson.ReadFile(datasetFile) }, prompts)
            : task.GenerateForEvaluation(tokenizer, seed, prompts);
        if (tokenizer is null && parts.Any(p => p.Prompts[0].Clean.IsText)) throw new ArgumentException(noTokenizer);
        return task.Tokenize(parts, tokenizer);
    }

    /// <summary>A comma-separated list (null when the option was not given).</summary>
    public static IReadOnlyList<T>? ParseList<T>(string? text, Func<string, T> parse)
    {
        if (text is null) return null;
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var items = names.Select(parse).ToArray();
        // Two spellings of one choice ("node,nodes") are a duplicate too: compared after parsing.
        for (int i = 0; i < items.Length; i++)
            for (int j = 0; j < i; j++)
                if (EqualityComparer<T>.Default.Equals(items[i], items[j]))
                    throw new ArgumentException($"'{text}' lists {(names[i] == names[j] ? $"'{names[i]}' twice" : $"'{names[j]}' and '{names[i]}', the same choice")}; list each once.");
        return items.Length > 0 ? items : throw new ArgumentException($"'{text}' lists nothing.");
    }
}
