using System.Globalization;
using System.Text;
using System.Text.Json;
using Workbook.Util;

namespace Workbook.Discovery;

/// <summary>A scores file as read back: how the scores were made and the score of every edge by name.</summary>
public sealed record ScoresFile
{
    public required string Model { get; init; }
    public required string Task { get; init; }
    public required string Algorithm { get; init; }
    public required string Search { get; init; }
    public required string Ablation { get; init; }
    public required string Target { get; init; }
    /// <summary>(edge name "src->dest", score), in file order.</summary>
    public required IReadOnlyList<KeyValuePair<string, double>> Edges { get; init; }
    public IReadOnlyList<NodeScore>? Nodes { get; init; }
}

/// <summary>
/// The JSON format of discovery scores (<c>workbook discover --json/--out</c>): metadata, the algorithm's settings, what
/// a score means, then every edge in graph order as <c>{"src", "dest", "score"}</c> (and every node for node search).
/// Formatting is fixed (no whitespace, shortest round-trip numbers, ±∞ as the strings "Infinity"/"-Infinity", nothing
/// time-dependent), so the same run gives the same bytes.
/// </summary>
public static class ScoresJson
{
    public const string Format = "workbook-edge-scores/1";

    public static string Write(DiscoveryResult result)
    {
        var scores = result.Scores;
        var info = scores.Info;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteString("model", info.Model);
            w.WriteString("task", info.Task);
            w.WriteString("algorithm", info.Algorithm.Name());
            w.WriteString("search", info.Search.Name());
            w.WriteString("ablation", info.Ablation.ToString());
            w.WriteString("target", info.Target.Name());
            w.WriteNumber("prompts", info.Prompts);
            w.WriteNumber("seed", info.Seed);
            w.WriteString("graph", scores.Graph.Describe());
            w.WriteStartObject("settings");
            foreach (var (key, value) in info.Settings) w.WriteString(key, value);
            w.WriteEndObject();
            w.WriteString("scoreMeaning", info.Algorithm.ScoreMeaning() + (info.Search == SearchSpace.Node
                ? "; node search: edge score = min(score of its source node, score of its destination node), a node's score being its residual out-edge's"
                : ""));
            w.WriteStartArray("edges");
            foreach (var e in scores.Graph.Edges)
            {
                w.WriteStartObject();
                w.WriteString("src", e.Source.Name);
                w.WriteString("dest", e.Destination.Name);
                Number(w, "score", scores[e]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (result.Nodes is { } nodes)
            {
                w.WriteStartArray("nodes");
                foreach (var n in nodes)
                {
                    w.WriteStartObject();
                    w.WriteString("node", n.Node);
                    Number(w, "score", n.Score);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    static void Number(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsPositiveInfinity(value)) w.WriteString(name, "Infinity");
        else if (double.IsNegativeInfinity(value)) w.WriteString(name, "-Infinity");
        else w.WriteNumber(name, value);
    }

    /// <summary>Writes the scores to <paramref name="path"/> atomically (a temporary file, then a rename).</summary>
    public static void WriteFile(string path, DiscoveryResult result) => AtomicFile.WriteAllText(path, Write(result) + "\n");

    public static ScoresFile ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Scores file '{path}' does not exist.", path);
        try
        {
            return Read(Util.JsonInput.ReadText(path), path);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            throw new FormatException($"'{path}' is not a scores file written by `workbook discover`: {e.Message}", e);
        }
    }

    public static ScoresFile Read(string json, string source = "scores")
    {
        using var doc = JsonInput.Parse(json, source);
        var root = JsonInput.RootObject(doc, source);
        string Str(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new FormatException($"it has no \"{name}\" string.");
        if (Str("format") != Format) throw new FormatException($"its format is '{Str("format")}', expected '{Format}'.");
        if (!root.TryGetProperty("edges", out var edgesJson) || edgesJson.ValueKind != JsonValueKind.Array)
            throw new FormatException("it has no \"edges\" array.");
        var edges = new List<KeyValuePair<string, double>>();
        int i = 0;
        foreach (var e in edgesJson.EnumerateArray())
        {
            string src = e.TryGetProperty("src", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : throw new FormatException($"edge {i} has no \"src\".");
            string dest = e.TryGetProperty("dest", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : throw new FormatException($"edge {i} has no \"dest\".");
            edges.Add(new($"{src}->{dest}", ReadNumber(e, $"edge {i} ({src}->{dest})")));
            i++;
        }
        if (edges.Count == 0) throw new FormatException("it scores no edge.");
        List<NodeScore>? nodes = null;
        if (root.TryGetProperty("nodes", out var nodesJson) && nodesJson.ValueKind == JsonValueKind.Array)
            nodes = nodesJson.EnumerateArray().Select((n, k) => new NodeScore(
                n.TryGetProperty("node", out var name) ? name.GetString()! : throw new FormatException($"node {k} has no \"node\"."), ReadNumber(n, $"node {k}"))).ToList();
        return new ScoresFile
        {
            Model = Str("model"), Task = Str("task"), Algorithm = Str("algorithm"), Search = Str("search"), Ablation = Str("ablation"), Target = Str("target"),
            Edges = edges, Nodes = nodes,
        };
    }

    static double ReadNumber(JsonElement element, string what)
    {
        if (!element.TryGetProperty("score", out var v)) throw new FormatException($"{what} has no \"score\".");
        if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
        if (v.ValueKind == JsonValueKind.String)
        {
            switch (v.GetString())
            {
                case "Infinity": return double.PositiveInfinity;
                case "-Infinity": return double.NegativeInfinity;
            }
        }
        throw new FormatException($"{what}: the score {v.GetRawText()} is not a number, \"Infinity\" or \"-Infinity\".");
    }
}
