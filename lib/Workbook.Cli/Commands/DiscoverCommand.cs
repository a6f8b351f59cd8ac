using System.CommandLine;
using System.Globalization;
using Workbook.Checkpoints;
using Workbook.Discovery;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Sharding;
using Workbook.Tasks;

namespace Workbook.Cli.Commands;

/// <summary>The options of a discovery run, shared by <c>discover</c> and <c>roc</c> (which can discover and compare in one go).</summary>
public sealed class DiscoveryOptions
{
    public Option<string> Model { get; } = CommonOptions.Model();
    public Option<string> Task { get; } = TaskInputs.Task();
    public Option<string> Algorithm { get; } = new("--algorithm", "-a") { Description = "acdc, eap (edge attribution patching), sp (subnetwork probing), hisp, eap-ig-inputs (eap-ig) or eap-ig-activations (EAP with integrated gradients).", Required = true };
    public Option<string> Search { get; } = new("--search") { Description = "edge (the factorized graph) or node (the residual graph; node scores mapped onto edges).", DefaultValueFactory = _ => "edge" };
    public Option<string?> Target { get; } = new("--target") { Description = "kl, mse, mse-answers or logit-diff. Default: the paper's for the algorithm and task." };
    public Option<string?> Ablation { get; } = TaskInputs.Ablation("--ablation", "The ablation value (default resample; sp: mean-corrupt).");
    public Option<int?> Prompts { get; } = TaskInputs.Prompts();
    public Option<int?> BatchSize { get; } = TaskInputs.BatchSize();
    public Option<int> Seed { get; } = new("--seed") { Description = "Seed of the dataset generator and of subnetwork probing's mask samples.", DefaultValueFactory = _ => 0 };
    public Option<string?> Dataset { get; } = TaskInputs.Dataset();
    public Option<int?> Epochs { get; } = new Option<int?>("--epochs") { Description = "Subnetwork probing epochs (default 500, the paper's)." }
        .Within(0, OptionLimits.MaxEpochs);
    public Option<int?> IgSteps { get; } = new Option<int?>("--ig-steps") { Description = $"EAP-IG integration steps (default {DiscoveryRequest.DefaultIntegratedGradientSteps}; 1 is plain EAP)." }
        .Within(1, DiscoveryRequest.MaxIntegratedGradientSteps);
    public Option<string?> TauExponents { get; } = new("--tau-exponents") { Description = "ACDC threshold exponents as FROM..TO or a comma list (default -25..-2; thresholds = {1,3,5,7,9} x 10^exponent)." };
    public Option<int?> Threads { get; } = new Option<int?>("--threads") { Description = "libtorch threads for the run (1 is fastest for the tiny Tracr and toy models, especially on a busy machine). Default: libtorch's." }
        .Within(1, OptionLimits.MaxThreads, $"this machine has {OptionLimits.MaxThreads} processors");
    public Option<int?> CircuitsPerForward { get; } = TaskInputs.CircuitsPerForward();
    public Option<string> Device { get; } = CommonOptions.Device();
    public Option<string> DType { get; } = CommonOptions.DType();
    public Option<bool> Offline { get; } = CommonOptions.Offline();
    public ShardOptions Sharding { get; } = new();

    public IEnumerable<Option> All => new Option[] { Model, Task, Algorithm, Search, Target, Ablation, Prompts, BatchSize, Seed, Dataset, Epochs, IgSteps, TauExponents, Threads, CircuitsPerForward, Device, DType, Offline,
        Sharding.Shard, Sharding.Part };

    /// <summary>
    /// Parses every option (errors before any model is loaded), loads the model and runs the discovery. With --shard it
    /// runs only that shard's work units, writes their part file (with <paramref name="render"/>, how the merged result
    /// is shown) and returns null. <paramref name="wholeRunOutputs"/> are refused beside --shard.
    /// </summary>
    public DiscoveryResult? Run<TRender>(ParseResult parse, string command, TRender render, params Option[] wholeRunOutputs) =>
        Run(parse, command, render, null, null, wholeRunOutputs);

    /// <summary>The model these options name (dtype checked before it is read), with a note when it has random weights.</summary>
    public LoadedModel LoadModel(ParseResult parse)
    {
        var load = CommonOptions.LoadOptions(parse, Device, DType, Offline);
        Precision.EnsureUsable(load.DType, Devices.Parse(load.Device)); // before the model is read
        var loaded = ModelLoader.LoadWithTokenizer(parse.GetValue(Model)!, load);
        if (loaded.RandomWeights is { } random) parse.InvocationConfiguration.Error.WriteLine($"note: '{loaded.DisplayName}' is {random}.");
        return loaded;
    }

    /// <summary>Discovery on a model and prompts the caller already holds (null: loaded and prepared here), so a verb that goes on to use them loads them once.</summary>
    public DiscoveryResult? Run<TRender>(ParseResult parse, string command, TRender render, LoadedModel? given, IReadOnlyList<TokenizedDataset>? givenParts,
        params Option[] wholeRunOutputs)
    {
        var shard = Sharding.Parse(parse, wholeRunOutputs);
        var task = KnownTasks.Get(parse.GetValue(Task)!);
        var algorithm = DiscoveryNames.ParseAlgorithm(parse.GetValue(Algorithm)!);
        var search = DiscoveryNames.ParseSearch(parse.GetValue(Search)!);
        DiscoveryTarget? target = parse.GetValue(Target) is string t ? DiscoveryNames.ParseTarget(t) : null;
        AblationValue? ablation = parse.GetValue(Ablation) is string a ? AblationValue.Parse(a) : null;
        var sp = new SubnetworkProbingOptions();
        if (parse.GetValue(Epochs) is int epochs)
            sp = epochs >= 0 ? sp with { Epochs = epochs } : throw new ArgumentException($"--epochs must not be negative, got {epochs}.");
        int? igSteps = parse.GetValue(IgSteps);
        if (igSteps is not null && !algorithm.IsIntegratedGradients())
            throw new ArgumentException($"--ig-steps applies to eap-ig-inputs and eap-ig-activations, not {algorithm.Name()}.");
        var acdc = new AcdcOptions { CircuitsPerForward = parse.GetValue(CircuitsPerForward) };
        if (parse.GetValue(TauExponents) is string exps) acdc = acdc with { TauExponents = ParseExponents(exps) };

        using var owned = given is null ? LoadModel(parse) : null;
        var loaded = given ?? owned!;
        var parts = givenParts ?? TaskInputs.Prepare(task, loaded, parse.GetValue(Dataset), parse.GetValue(Seed), parse.GetValue(Prompts));
        using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
        var request = new DiscoveryRequest
        {
            Model = loaded.Model, Task = task, Parts = parts, Algorithm = algorithm, Search = search, Target = target, Ablation = ablation,
            BatchSize = parse.GetValue(BatchSize), Seed = parse.GetValue(Seed), Acdc = acdc, SubnetworkProbing = sp, IntegratedGradientSteps = igSteps ?? DiscoveryRequest.DefaultIntegratedGradientSteps, Threads = parse.GetValue(Threads),
            Progress = progress, Shard = shard, ModelName = loaded.DisplayName,
        };
        if (shard is null) return CircuitDiscovery.Run(request);
        var partial = CircuitDiscovery.RunUnits(request);
        var info = partial.Plan.Info;
        var resolved = new Dictionary<string, string>
        {
            ["task"] = info.Task, ["algorithm"] = info.Algorithm.Name(), ["search"] = info.Search.Name(), ["target"] = info.Target.Name(),
            ["ablation"] = info.Ablation.ToString(), ["prompts"] = info.Prompts.ToString(CultureInfo.InvariantCulture),
            ["settings"] = string.Join(",", info.Settings.Select(kv => $"{kv.Key}={kv.Value}")),
        };
        var covers = new ShardCoverage
        {
            Units = "", Seeds = new[] { info.Seed },
            Thresholds = partial.Units.OfType<ThresholdUnitResult>().Select(u => u.Tau).ToArray() is { Length: > 0 } taus ? taus : null,
            Prompts = partial.Units.OfType<BatchUnitResult>().Any()
                ? ShardOptions.PromptRanges(partial.Units.OfType<BatchUnitResult>().Select(u => (u.Part, u.FirstPrompt, u.Prompts))) : null,
        };
        Sharding.WritePart(parse, command, shard, partial.Plan.Units, loaded, parts, resolved, covers, new DiscoveryPart<TRender>(render, partial.Plan, partial.Units));
        return null;
    }

    static IReadOnlyList<int> ParseExponents(string text)
    {
        int Int(string s) => int.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v)
            ? v : throw new ArgumentException($"--tau-exponents: '{s}' is not an integer.");
        int Exponent(string s)
        {
            int e = Int(s);
            OptionLimits.Ensure(e >= -OptionLimits.MaxTauMagnitude && e <= OptionLimits.MaxTauMagnitude,
                $"--tau-exponents: {e} is outside -{OptionLimits.MaxTauMagnitude}..{OptionLimits.MaxTauMagnitude} (a threshold of 10^{e} is not a finite, positive double).");
            return e;
        }
        int[] exponents;
        int range = text.IndexOf("..", StringComparison.Ordinal);
        if (range >= 0)
        {
            int from = Exponent(text[..range]), to = Exponent(text[(range + 2)..]);
            if (to < from) throw new ArgumentException($"--tau-exponents: {from}..{to} is empty.");
            OptionLimits.Ensure(to - from + 1 <= OptionLimits.MaxTauExponents,
                $"--tau-exponents: {from}..{to} is {to - from + 1} exponents, more than {OptionLimits.MaxTauExponents} (each is 5 full ACDC runs; the paper uses 24).");
            exponents = Enumerable.Range(from, to - from + 1).ToArray();
        }
        else
        {
            var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries);
            OptionLimits.Ensure(parts.Length <= OptionLimits.MaxTauExponents, $"--tau-exponents lists {parts.Length} exponents, more than {OptionLimits.MaxTauExponents}.");
            exponents = parts.Select(Exponent).ToArray();
        }
        return exponents.Length > 0 ? exponents : throw new ArgumentException("--tau-exponents lists nothing.");
    }

}

/// <summary>A shard's part of a discover or roc run: how the merged result is shown, the plan, and the shard's units.</summary>
public sealed record DiscoveryPart<TRender>(TRender Render, DiscoveryPlan Plan, IReadOnlyList<DiscoveryUnitResult> Units);

/// <summary><c>workbook discover</c>: scores every edge of a model for a task with a circuit-discovery algorithm.</summary>
public static class DiscoverCommand
{
    public static Command Build()
    {
        var options = new DiscoveryOptions();
        var json = CommonOptions.Json();
        var output = new Option<string?>("--out") { Description = "Write the scores (JSON) to this file, atomically." };
        var top = new Option<int>("--top") { Description = "Edges to list in the text output (most important first).", DefaultValueFactory = _ => 20 }
            .Within(0, OptionLimits.MaxTop);
        var cmd = new Command("discover", "Discover a circuit: score every edge with ACDC, edge attribution patching (plain or with integrated gradients), subnetwork probing or HISP (spec A.5).");
        foreach (var o in options.All) cmd.Options.Add(o);
        cmd.Options.Add(output);
        cmd.Options.Add(top);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var render = new Render(parse.GetValue(json), parse.GetValue(top));
            if (options.Run(parse, "discover", render, output) is not { } result) return 0;   // a shard wrote its part
            if (parse.GetValue(output) is string path) ScoresJson.WriteFile(path, result);
            parse.InvocationConfiguration.Output.Write(Outputs(render, result).Stdout);
            return 0;
        });
        return cmd;
    }

    /// <summary>How discover shows its result: the scores' JSON, or text listing the <see cref="Top"/> edges.</summary>
    public sealed record Render(bool Json, int Top);

    /// <summary>What discover prints and writes (from one run, or merged from the parts of a sharded one).</summary>
    public static VerbOutputs Outputs(Render render, DiscoveryResult result)
    {
        string Json() => ScoresJson.Write(result);
        var writer = new StringWriter();
        if (render.Json)
        {
            writer.WriteLine(Json());
            return new VerbOutputs(writer.ToString(), Json, null);
        }
        var scores = result.Scores;
        var info = scores.Info;
        writer.WriteLine($"{info.Algorithm.DisplayName()}, {info.Search.Name()} search, {info.Task} on {Util.ControlCharacters.Escape(info.Model)}: {info.Prompts} prompts, " +
            $"ablation {info.Ablation}, target {info.Target.Name()}");
        writer.WriteLine($"score: {info.Algorithm.ScoreMeaning()}");
        if (result.Nodes is { } nodes)
        {
            writer.WriteLine("nodes (residual graph), most important first:");
            foreach (var n in nodes.OrderByDescending(n => Math.Abs(n.Score)).ThenBy(n => n.Node, StringComparer.Ordinal))
                writer.WriteLine($"  {n.Node,-16} {Format(n.Score)}");
        }
        int count = Math.Min(render.Top, scores.Graph.EdgeCount);
        writer.WriteLine($"top {count} of {scores.Graph.EdgeCount} edges:");
        foreach (var e in scores.Ranked().Take(count)) writer.WriteLine($"  {e.Name,-28} {Format(scores[e])}");
        return new VerbOutputs(writer.ToString(), Json, null);
    }

    internal static string Format(double x) => double.IsPositiveInfinity(x) ? "+inf" : double.IsNegativeInfinity(x) ? "-inf" : x.ToString("G6", CultureInfo.InvariantCulture);
}
