using System.Text.Json;
using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

public class CoreCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-cli-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void PatchWritesEveryScenarioWithinTolerance()
    {
        string outFile = Path.Combine(_dir, "out.json");
        var r = CliRunner.Run("patch", "--model", TestFiles.Fixture("tiny-gpt2"), "--scenarios", TestFiles.Fixture("tiny-gpt2-scenarios.json"), "--out", outFile);
        Assert.True(r.ExitCode == 0, r.Err);
        var expected = ScenarioFixture.Load("tiny-gpt2-scenarios.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(outFile));
        var scenarios = doc.RootElement.GetProperty("scenarios").EnumerateArray().ToList();
        Assert.Equal(expected.Scenarios.Select(s => s.Name), scenarios.Select(s => s.GetProperty("name").GetString()));
        foreach (var s in scenarios)
        {
            var want = expected[s.GetProperty("name").GetString()!].Logits;
            var got = s.GetProperty("logits").EnumerateArray().SelectMany(b => b.EnumerateArray()).SelectMany(t => t.EnumerateArray()).Select(x => x.GetSingle()).ToArray();
            Assert.Equal(want.Length, got.Length);
            Assert.True(want.Zip(got).Max(p => Math.Abs(p.First - p.Second)) <= 1e-4);
        }
    }

    [Fact]
    public void PatchWithAnUnknownEdgeFailsAndWritesNothing()
    {
        string scenarios = Path.Combine(_dir, "bad.json");
        File.WriteAllText(scenarios, File.ReadAllText(TestFiles.Fixture("tiny-gpt2-scenarios.json")).Replace("\"A0.1\", \"MLP 0\"", "\"A0.7\", \"MLP 0\""));
        string outFile = Path.Combine(_dir, "out.json");
        var r = CliRunner.Run("patch", "--model", TestFiles.Fixture("tiny-gpt2"), "--scenarios", scenarios, "--out", outFile);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("A0.7", r.Err);
        Assert.False(File.Exists(outFile));
        Assert.Empty(Directory.GetFiles(_dir, "out.json*"));
    }

    [Fact]
    public void RunPrintsTopPredictionsAsJson()
    {
        var r = CliRunner.Run("run", "--model", TestFiles.Fixture("tiny-gpt2"), "--tokens", "409,191,80", "--top", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var top = doc.RootElement.GetProperty("top").EnumerateArray().ToList();
        Assert.Equal(3, top.Count);
        var logits = top.Select(t => t.GetProperty("logit").GetDouble()).ToList();
        Assert.Equal(logits.OrderByDescending(x => x), logits);
        Assert.All(top, t => Assert.InRange(t.GetProperty("prob").GetDouble(), 0, 1));
    }

    [Fact]
    public void ErrorsGoToStderrWithNonZeroExit()
    {
        var r = CliRunner.Run("run", "--model", Path.Combine(_dir, "missing"), "--tokens", "1");
        Assert.NotEqual(0, r.ExitCode);
        Assert.StartsWith("error:", r.Err);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void HooksListsNamesAndShapes()
    {
        var r = CliRunner.Run("hooks", "--model", TestFiles.Fixture("tiny-neox"), "--json", "--seq", "6");
        Assert.True(r.ExitCode == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var hooks = doc.RootElement.GetProperty("hooks").EnumerateArray().ToDictionary(h => h.GetProperty("name").GetString()!, h => h.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray());
        Assert.Equal(new long[] { 1, 4, 6, 6 }, hooks["blocks.0.attn.hook_pattern"]);
        Assert.Equal(new long[] { 1, 6, 64 }, hooks["blocks.2.hook_resid_post"]);
    }
}
