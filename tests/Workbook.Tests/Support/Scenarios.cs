using System.Text.Json;

namespace Workbook.Tests.Support;

/// <summary>The fixture scenario files, read independently of the workbook's own scenario reader.</summary>
public sealed class ScenarioFixture
{
    public required string Model { get; init; }
    public required long[,] Clean { get; init; }
    public required long[,] Corrupt { get; init; }
    public required List<FixtureScenario> Scenarios { get; init; }
    public required List<string> Sources { get; init; }
    public required List<string> Destinations { get; init; }

    public FixtureScenario this[string name] => Scenarios.Single(s => s.Name == name);

    public static ScenarioFixture Load(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestFiles.Fixture(file)));
        var root = doc.RootElement;
        static long[,] Tokens(JsonElement e)
        {
            var rows = e.EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetInt64()).ToArray()).ToArray();
            var t = new long[rows.Length, rows[0].Length];
            for (int i = 0; i < rows.Length; i++)
                for (int j = 0; j < rows[i].Length; j++) t[i, j] = rows[i][j];
            return t;
        }
        var scenarios = new List<FixtureScenario>();
        foreach (var s in root.GetProperty("scenarios").EnumerateArray())
        {
            var logits = s.GetProperty("logits");
            int b = logits.GetArrayLength(), t = logits[0].GetArrayLength(), v = logits[0][0].GetArrayLength();
            var flat = new float[b * t * v];
            int k = 0;
            foreach (var bb in logits.EnumerateArray())
                foreach (var tt in bb.EnumerateArray())
                    foreach (var x in tt.EnumerateArray()) flat[k++] = x.GetSingle();
            var edges = s.GetProperty("patched_edges").EnumerateArray().Select(e => new FixtureEdge(
                e[0].GetString()!, e[1].GetString()!,
                e[2].ValueKind == JsonValueKind.Null ? null : e[2].EnumerateArray().Select(p => p.GetInt32()).ToArray())).ToList();
            scenarios.Add(new FixtureScenario(s.GetProperty("name").GetString()!, s.GetProperty("input").GetString()!,
                s.GetProperty("patch").GetString()!, edges, flat, new[] { b, t, v }));
        }
        var nodes = root.GetProperty("node_names");
        return new ScenarioFixture
        {
            Model = root.GetProperty("model").GetString()!,
            Clean = Tokens(root.GetProperty("clean_tokens")),
            Corrupt = Tokens(root.GetProperty("corrupt_tokens")),
            Scenarios = scenarios,
            Sources = nodes.GetProperty("srcs").EnumerateArray().Select(x => x.GetString()!).ToList(),
            Destinations = nodes.GetProperty("dests").EnumerateArray().Select(x => x.GetString()!).ToList(),
        };
    }
}

public sealed record FixtureEdge(string Src, string Dest, int[]? Positions);

public sealed record FixtureScenario(string Name, string Input, string Patch, List<FixtureEdge> Edges, float[] Logits, int[] Shape);
