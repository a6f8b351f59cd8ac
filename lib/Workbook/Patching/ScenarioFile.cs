using System.Text.Json;
using TorchSharp;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// What a scenario patches with: an ablation value and the direction that says which prompts its values come from
/// (<see cref="PatchDirection.AblateClean"/>: the corrupt prompts; <see cref="PatchDirection.RestoreCorrupt"/>: the clean ones).
/// </summary>
public sealed record ScenarioPatch(AblationValue Value, PatchDirection Direction)
{
    /// <summary>
    /// The reference fixtures' spellings of a scenario's <c>patch</c>, the only place they are translated. Note that
    /// <c>mean_corrupt</c> is the mean over the file's own corrupt prompts, the batch: it is <c>mean-batch</c>, not the
    /// dataset mean that <c>mean-corrupt</c> names. <c>none</c> (the unpatched run) is a scenario without a patch.
    /// </summary>
    public static IReadOnlyDictionary<string, ScenarioPatch> FixtureSpellings { get; } = new Dictionary<string, ScenarioPatch>(StringComparer.Ordinal)
    {
        ["corrupt"] = new(AblationValue.Resample, PatchDirection.AblateClean),
        ["clean"] = new(AblationValue.Resample, PatchDirection.RestoreCorrupt),
        ["zero"] = new(AblationValue.Zero, PatchDirection.AblateClean),
        ["mean_corrupt"] = new(AblationValue.Mean(MeanOver.Batch), PatchDirection.AblateClean),
    };

    /// <summary>
    /// A scenario's <c>patch</c>: a fixture spelling, else any ablation value's label, whose values then come from the
    /// prompts paired with the input (the corrupt ones for a clean input). Null for <c>none</c>.
    /// </summary>
    public static ScenarioPatch? Parse(string text, bool inputIsClean, string where)
    {
        if (text == "none") return null;
        if (FixtureSpellings.TryGetValue(text, out var patch)) return patch;
        if (AblationValue.Vocabulary.TryParse(text) is { } value)
            return new ScenarioPatch(value, inputIsClean ? PatchDirection.AblateClean : PatchDirection.RestoreCorrupt);
        throw new FormatException($"{where}: patch '{text}' must be none, {string.Join(", ", FixtureSpellings.Keys)} or an ablation value ({AblationValue.Vocabulary.Syntaxes}).");
    }
}

/// <summary>One patched edge of a scenario: positions null = every position.</summary>
public sealed record ScenarioEdge(string Source, string Destination, IReadOnlyList<int>? Positions);

/// <summary>One scenario: the input side, the patch (null: the unpatched run) and the edges it patches.</summary>
public sealed record PatchScenario(string Name, bool InputIsClean, ScenarioPatch? Patch, IReadOnlyList<ScenarioEdge> Edges);

/// <summary>
/// An edge-patching scenario file (format of the reference fixtures): clean and corrupt token batches and a list
/// of scenarios, each an input side, a patch kind and the edges to patch. Expected logits, if present, are ignored.
/// </summary>
public sealed class ScenarioFile
{
    public required string Model { get; init; }
    public required long[,] Clean { get; init; }
    public required long[,] Corrupt { get; init; }
    public required IReadOnlyList<PatchScenario> Scenarios { get; init; }
    public IReadOnlyList<string>? SourceNames { get; init; }
    public IReadOnlyList<string>? DestinationNames { get; init; }
    /// <summary>The file (or name) the scenarios were read from, for messages.</summary>
    public string Source { get; init; } = "scenarios";

    public static ScenarioFile Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Scenario file '{path}' not found.", path);
        using var stream = new MemoryStream(Util.JsonInput.ReadBytes(path));
        return Parse(stream, path);
    }

    public static ScenarioFile Parse(Stream json, string source = "scenarios")
    {
        byte[] bytes;
        using (var buffer = new MemoryStream())
        {
            json.CopyTo(buffer);
            bytes = buffer.ToArray();
        }
        using (var doc = Util.JsonInput.Parse(bytes, source))
        {
            var root = Util.JsonInput.RootObject(doc, source);
            var clean = Tokens(root, "clean_tokens", source);
            var corrupt = Tokens(root, "corrupt_tokens", source);
            if (clean.GetLength(0) != corrupt.GetLength(0) || clean.GetLength(1) != corrupt.GetLength(1))
                throw new FormatException($"{source}: clean_tokens is [{clean.GetLength(0)}, {clean.GetLength(1)}] but corrupt_tokens is [{corrupt.GetLength(0)}, {corrupt.GetLength(1)}]; they must match.");
            if (!root.TryGetProperty("scenarios", out var list) || list.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{source}: missing array \"scenarios\".");
            var scenarios = new List<PatchScenario>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            int i = 0;
            foreach (var s in list.EnumerateArray())
            {
                string where = $"{source}: scenario {i++}";
                if (s.ValueKind != JsonValueKind.Object) throw new FormatException($"{where} must be an object.");
                string name = Str(s, "name", where);
                where = $"{source}: scenario '{name}'";
                if (!names.Add(name)) throw new FormatException($"{where} appears twice.");
                bool inputClean = Str(s, "input", where) switch
                {
                    "clean" => true,
                    "corrupt" => false,
                    var other => throw new FormatException($"{where}: input '{other}' must be 'clean' or 'corrupt'."),
                };
                var patch = ScenarioPatch.Parse(Str(s, "patch", where), inputClean, where);
                var edges = new List<ScenarioEdge>();
                if (!s.TryGetProperty("patched_edges", out var pe) || pe.ValueKind != JsonValueKind.Array)
                    throw new FormatException($"{where}: missing array \"patched_edges\".");
                int j = 0;
                foreach (var e in pe.EnumerateArray())
                {
                    string ew = $"{where}, edge {j++}";
                    if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != 3 || e[0].ValueKind != JsonValueKind.String || e[1].ValueKind != JsonValueKind.String)
                        throw new FormatException($"{ew}: expected [source, destination, null | [positions]].");
                    IReadOnlyList<int>? positions = null;
                    if (e[2].ValueKind == JsonValueKind.Array)
                        positions = e[2].EnumerateArray().Select(p => p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out int v) && v >= 0 && v < clean.GetLength(1)
                            ? v
                            : throw new FormatException($"{ew}: position {p.GetRawText()} is not within 0..{clean.GetLength(1) - 1}.")).ToList();
                    else if (e[2].ValueKind != JsonValueKind.Null)
                        throw new FormatException($"{ew}: positions must be null or an array of integers.");
                    edges.Add(new ScenarioEdge(e[0].GetString()!, e[1].GetString()!, positions));
                }
                if (patch is null && edges.Count > 0)
                    throw new FormatException($"{where}: patch 'none' cannot list patched edges.");
                if (patch is not null && edges.Count == 0) // a patch that names no edge would silently be the unpatched run
                    throw new FormatException($"{where}: patch '{Str(s, "patch", where)}' lists no patched edges, so it would change nothing; use patch 'none' for the unpatched run.");
                scenarios.Add(new PatchScenario(name, inputClean, patch, edges));
            }
            List<string>? srcs = null, dests = null;
            if (root.TryGetProperty("node_names", out var nn) && nn.ValueKind == JsonValueKind.Object)
            {
                srcs = StringList(nn, "srcs", source);
                dests = StringList(nn, "dests", source);
            }
            return new ScenarioFile
            {
                Model = root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "",
                Clean = clean,
                Corrupt = corrupt,
                Scenarios = scenarios,
                SourceNames = srcs,
                DestinationNames = dests,
                Source = source,
            };
        }
    }

    static string Str(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new FormatException($"{where}: missing string \"{name}\".");

    static List<string>? StringList(JsonElement e, string name, string where)
    {
        if (!e.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
            throw new FormatException($"{where}: node_names.{name} must be an array of strings.");
        return v.EnumerateArray().Select(x => x.GetString()!).ToList();
    }

    static long[,] Tokens(JsonElement root, string name, string where)
    {
        if (!root.TryGetProperty(name, out var rows) || rows.ValueKind != JsonValueKind.Array || rows.GetArrayLength() == 0)
            throw new FormatException($"{where}: missing non-empty array \"{name}\".");
        int b = rows.GetArrayLength(), t = -1, i = 0;
        long[,]? result = null;
        foreach (var row in rows.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Array || row.GetArrayLength() == 0)
                throw new FormatException($"{where}: {name}[{i}] must be a non-empty array of token ids.");
            if (t < 0)
            {
                t = row.GetArrayLength();
                result = new long[b, t];
            }
            else if (row.GetArrayLength() != t)
                throw new FormatException($"{where}: {name}[{i}] has {row.GetArrayLength()} tokens but {name}[0] has {t}; prompts of a batch must have equal length.");
            int j = 0;
            foreach (var x in row.EnumerateArray())
            {
                if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out long id) || id < 0)
                    throw new FormatException($"{where}: {name}[{i}][{j}] = {x.GetRawText()} is not a token id.");
                result![i, j++] = id;
            }
            i++;
        }
        return result!;
    }

    /// <summary>The factorized graph the scenarios name (Q/K/V separated unless the node names say otherwise).</summary>
    public ComputationGraph GraphFor(TransformerConfig config)
    {
        bool separate = DestinationNames is null || DestinationNames.Any(d => d.EndsWith(".Q", StringComparison.Ordinal));
        var graph = ComputationGraph.Factorized(config, separate);
        if (SourceNames is not null && !SourceNames.SequenceEqual(graph.Sources.Select(s => s.Name)))
            throw new ArgumentException($"{Source}: the scenario file's source nodes do not match the {graph.Describe()}.");
        if (DestinationNames is not null && !DestinationNames.SequenceEqual(graph.Destinations.Select(s => s.Name)))
            throw new ArgumentException($"{Source}: the scenario file's destination nodes do not match the {graph.Describe()}.");
        return graph;
    }

    /// <summary>The edges a scenario patches, each at its positions (or everywhere); unknown node names are errors naming the scenario.</summary>
    public IReadOnlyList<CircuitEdge> EdgesOf(PatchScenario scenario, ComputationGraph graph)
    {
        var edges = new List<CircuitEdge>();
        foreach (var e in scenario.Edges)
        {
            Edge edge;
            try
            {
                edge = graph.Edge(e.Source, e.Destination);
            }
            catch (UnknownNodeException ex)
            {
                throw new UnknownNodeException($"{Source}: scenario '{scenario.Name}': {ex.Message}");
            }
            if (e.Positions is null) edges.Add(new CircuitEdge(edge, null));
            else edges.AddRange(e.Positions.Select(p => new CircuitEdge(edge, p)));
        }
        return edges;
    }

    /// <summary>Computes a scenario's logits [B, T, V] from its tokens, patch and edges alone.</summary>
    public Tensor Run(HookedTransformer model, PatchScenario scenario, ComputationGraph? graph = null)
    {
        graph ??= GraphFor(model.Config);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var batch = PromptPair.FromArrays(Clean, Corrupt, model.Device);
        var input = scenario.InputIsClean ? batch.Clean : batch.Corrupt;
        if (scenario.Patch is not { } patch) return model.Forward(input).MoveToOuterDisposeScope();
        using var masks = PatchMasks.ForEdges(graph, EdgesOf(scenario, graph), batch.SeqLen, device: model.Device);
        // A scenario file's dataset is its own prompts: dataset means average them all.
        using var means = patch.Value.Needs.HasFlag(AblationNeeds.DatasetMeans) ? MeanReference.Compute(model, graph, new[] { batch }, MeanAblation.SidesFor(new[] { patch.Value })) : null;
        var values = PatchValues.Compute(model, graph, patch.Value, patch.Direction, batch, means);
        return Patcher.Run(model, masks, values, input).MoveToOuterDisposeScope();
    }
}
