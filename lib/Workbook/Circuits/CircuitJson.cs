using System.Text.Json;
using Workbook.Graph;

namespace Workbook.Circuits;

/// <summary>
/// Circuit files: <c>{"edges":[{"src":"A0.1","dest":"A1.2.Q","position":5}, ...]}</c>. A position is an integer,
/// null (every position), or a label such as "IO" or "end" resolved through <paramref name="labels"/>.
/// </summary>
public static class CircuitJson
{
    public static string Write(Circuit circuit, IReadOnlyDictionary<int, string>? positionLabels = null)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("graph", circuit.Graph.Describe());
            w.WriteStartArray("edges");
            foreach (var e in circuit.Edges)
            {
                w.WriteStartObject();
                w.WriteString("src", e.Edge.Source.Name);
                w.WriteString("dest", e.Edge.Destination.Name);
                if (e.Position is int p)
                {
                    if (positionLabels != null && positionLabels.TryGetValue(p, out var label)) w.WriteString("position", label);
                    else w.WriteNumber("position", p);
                }
                else w.WriteNull("position");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Reads a circuit file; every problem is reported with the edge's index in the file.</summary>
    public static Circuit Read(ComputationGraph graph, string json, IReadOnlyDictionary<string, int>? labels = null, string source = "circuit")
    {
        using (var doc = Util.JsonInput.Parse(json, source, maxDepth: 16))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("edges", out var edges) || edges.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{source}: expected an object with an array \"edges\".");
            var result = new List<CircuitEdge>();
            int i = 0;
            foreach (var e in edges.EnumerateArray())
            {
                string where = $"{source}: edge {i++}";
                if (e.ValueKind != JsonValueKind.Object) throw new FormatException($"{where} must be an object.");
                string src = RequiredString(e, "src", where), dest = RequiredString(e, "dest", where);
                int? position = null;
                if (e.TryGetProperty("position", out var p))
                {
                    switch (p.ValueKind)
                    {
                        case JsonValueKind.Null: break;
                        case JsonValueKind.Number when p.TryGetInt32(out int pos) && pos >= 0: position = pos; break;
                        case JsonValueKind.String:
                            string label = p.GetString()!;
                            if (labels == null || !labels.TryGetValue(label, out int resolved))
                                throw new FormatException($"{where}: position label '{label}' is unknown{(labels == null ? " (no position labels are defined for this circuit)" : $"; known labels: {string.Join(", ", labels.Keys)}")}.");
                            position = resolved;
                            break;
                        default: throw new FormatException($"{where}: position must be a non-negative integer, a label or null, got {p.GetRawText()}.");
                    }
                }
                Edge edge;
                try
                {
                    edge = graph.Edge(src, dest);
                }
                catch (UnknownNodeException ex)
                {
                    throw new UnknownNodeException($"{where}: {ex.Message}");
                }
                result.Add(new CircuitEdge(edge, position));
            }
            return Circuit.From(graph, result);
        }
    }

    static string RequiredString(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new FormatException($"{where}: missing string \"{name}\".");
}
