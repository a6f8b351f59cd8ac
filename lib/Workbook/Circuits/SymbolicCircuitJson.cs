using System.Text;
using System.Text.Json;
using Workbook.Util;
using System.Text.RegularExpressions;
using Workbook.Graph;

namespace Workbook.Circuits;

/// <summary>
/// Symbolic circuit files: <c>{"name": ..., "description": ..., "component": "edge"|"node", "separateQkv": bool,
/// "edges": [{"src": "A0.1", "dest": "A1.2.Q", "position": "S2" | 5 | null}]}</c>. A position is a label expression
/// of the task's prompts (<c>S2</c>, <c>S1+1</c>, <c>B_def..param_3</c>), an absolute token index, or null (every
/// position); <c>"allTokensOnly": true</c> marks an edge kept only when positions are ignored. Only "edges" is
/// required: without "component" a file whose destinations include <c>Resid Mid</c>/<c>Resid Post</c> is a node
/// circuit, and head destinations without <c>.Q/.K/.V</c> mean Q, K and V are not separated. Files written by
/// <see cref="CircuitJson"/> (with its "graph" description) are read too.
/// </summary>
public static class SymbolicCircuitJson
{
    public static string Write(SymbolicCircuit circuit, bool indented = false)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("name", circuit.Name);
            if (circuit.Description.Length > 0) w.WriteString("description", circuit.Description);
            w.WriteString("component", circuit.View == GraphView.Residual ? "node" : "edge");
            w.WriteBoolean("separateQkv", circuit.SeparateQkv);
            w.WriteStartArray("edges");
            foreach (var e in circuit.Edges)
            {
                w.WriteStartObject();
                w.WriteString("src", e.Source);
                w.WriteString("dest", e.Destination);
                if (e.Position is null) w.WriteNull("position");
                else if (int.TryParse(e.Position, out int p)) w.WriteNumber("position", p);
                else w.WriteString("position", e.Position);
                if (e.AllTokensOnly) w.WriteBoolean("allTokensOnly", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static SymbolicCircuit ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Circuit file '{path}' does not exist.", path);
        return Read(JsonInput.ReadText(path), Path.GetFileNameWithoutExtension(path), path);
    }

    public static SymbolicCircuit Read(string json, string defaultName, string source = "circuit")
    {
        using (var doc = JsonInput.Parse(json, source, maxDepth: 16))
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("edges", out var edgesEl) || edgesEl.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{source}: expected an object with an array \"edges\".");
            var edges = new List<SymbolicEdge>();
            int i = 0;
            foreach (var e in edgesEl.EnumerateArray())
            {
                string where = $"{source}: edge {i++}";
                if (e.ValueKind != JsonValueKind.Object) throw new FormatException($"{where} must be an object.");
                string src = RequiredString(e, "src", where), dest = RequiredString(e, "dest", where);
                string? position = null;
                if (e.TryGetProperty("position", out var p))
                {
                    position = p.ValueKind switch
                    {
                        JsonValueKind.Null => null,
                        JsonValueKind.Number when p.TryGetInt32(out int v) && v >= 0 => v.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        JsonValueKind.String when p.GetString()!.Trim().Length > 0 => p.GetString()!.Trim(),
                        _ => throw new FormatException($"{where}: position must be a label, a non-negative integer or null, got {p.GetRawText()}."),
                    };
                }
                bool allTokensOnly = e.TryGetProperty("allTokensOnly", out var a) && a.ValueKind == JsonValueKind.True;
                edges.Add(new SymbolicEdge(src, dest, position, allTokensOnly));
            }
            if (edges.Count == 0) throw new FormatException($"{source}: the circuit has no edges.");

            string name = root.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : defaultName;
            string? graphText = root.TryGetProperty("graph", out var g) && g.ValueKind == JsonValueKind.String ? g.GetString() : null;
            GraphView view;
            if (root.TryGetProperty("component", out var c) && c.ValueKind == JsonValueKind.String)
                view = c.GetString() switch
                {
                    "node" => GraphView.Residual,
                    "edge" => GraphView.Factorized,
                    var other => throw new FormatException($"{source}: \"component\" must be \"node\" or \"edge\", got \"{other}\"."),
                };
            else if (graphText is not null) view = graphText.StartsWith("residual", StringComparison.Ordinal) ? GraphView.Residual : GraphView.Factorized;
            else view = edges.Any(e => e.Destination.StartsWith("Resid Mid", StringComparison.Ordinal) || e.Destination.StartsWith("Resid Post", StringComparison.Ordinal))
                ? GraphView.Residual : GraphView.Factorized;
            bool separateQkv;
            if (root.TryGetProperty("separateQkv", out var s) && s.ValueKind is JsonValueKind.True or JsonValueKind.False) separateQkv = s.GetBoolean();
            else if (graphText is not null) separateQkv = !graphText.Contains("not separated", StringComparison.Ordinal);
            else separateQkv = !edges.Any(e => Regex.IsMatch(e.Destination, @"^A\d+\.\d+$"));
            string description = root.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : $"circuit file {source}";
            return new SymbolicCircuit(name, description, view, separateQkv, edges);
        }
    }

    static string RequiredString(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Trim().Length > 0
            ? v.GetString()!.Trim()
            : throw new FormatException($"{where}: missing string \"{name}\".");
}
