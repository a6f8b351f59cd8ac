using System.Text.Json;
using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

/// <summary>
/// Sharded runs end to end: each verb run whole and as N shards, every run in its own child process (so nothing in a
/// process can make them agree), then <c>workbook merge</c>, whose output must be byte-identical to the whole run's.
/// The whole run is the reference: it is the unsharded code path, untouched by part files and merging.
/// </summary>
public sealed class ShardedRunTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-sharded-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly Dictionary<string, string> NoEnvironment = new();
    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(6);

    string File(string name) => Path.Combine(_dir, name);

    /// <summary>
    /// Runs <paramref name="args"/> whole (plus <paramref name="wholeOutputs"/>) and as <paramref name="shards"/> shards, all at
    /// once in child processes; returns the whole run's stdout and the part files.
    /// </summary>
    (string WholeOut, string[] Parts) RunWholeAndSharded(string name, int shards, string[] wholeOutputs, params string[] args)
    {
        var parts = Enumerable.Range(1, shards).Select(k => File($"{name}-{k}.json")).ToArray();
        var commands = new List<string[]> { args.Concat(wholeOutputs).ToArray() };
        commands.AddRange(parts.Select((p, i) => args.Concat(new[] { "--shard", $"{i + 1}/{shards}", "--part", p }).ToArray()));
        var results = CliProcess.RunAll(NoEnvironment, Timeout, commands);
        for (int i = 0; i < results.Length; i++) Assert.True(results[i].ExitCode == 0, $"{string.Join(' ', commands[i])}: {results[i].Err}");
        for (int k = 1; k <= shards; k++) Assert.Equal($"{args[0]} shard {k}/{shards}", results[k].Out.Split(':')[0]);
        return (results[0].Out, parts);
    }

    static CliRunner.Result Merge(params string[] args)
    {
        var merged = CliRunner.Run(new[] { "merge" }.Concat(args).ToArray());
        Assert.True(merged.ExitCode == 0, merged.Err);
        return merged;
    }

    static void AssertSameBytes(string expected, string actualFile) =>
        Assert.True(System.IO.File.ReadAllText(actualFile) == expected, $"{Path.GetFileName(actualFile)} differs from the unsharded output");

    static JsonElement Body(string part) => JsonDocument.Parse(System.IO.File.ReadAllText(part)).RootElement.GetProperty("body").Clone();

    [Fact]
    public void EvalOnToyIoiMergesIntoTheUnshardedTextAndRows()
    {
        // 30 IOI templates x 2 prompts, one batch each: 30 units; the mean ablation averages over each part in whichever shard holds it.
        var (whole, parts) = RunWholeAndSharded("eval", 2, new[] { "--csv", File("whole.csv") },
            "eval", "--model", "toy-ioi", "--task", "ioi", "--circuit", "toy-ioi", "--ablation", "mean-corrupt", "--prompts", "2",
            "--metric", "logit-diff-recovered,kl");
        var merged = Merge(parts[1], parts[0], "--csv", File("merged.csv"), "--out", File("merged.json"));
        Assert.Equal(whole, merged.Out);
        Assert.StartsWith("ioi, circuit toy-ioi, edge/specific/mean-corrupt/ablate-clean/complement, 60 prompts in 30 part(s)", whole);
        Assert.True(System.IO.File.ReadAllBytes(File("whole.csv")).SequenceEqual(System.IO.File.ReadAllBytes(File("merged.csv"))), "the merged CSV differs");
        Assert.Equal(121, System.IO.File.ReadAllLines(File("merged.csv")).Length);   // header + 60 prompts x 2 metrics
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(File("merged.json")));
        Assert.Equal(120, doc.RootElement.GetProperty("rows").GetArrayLength());

        // A part says what it covered and what it ran on.
        var body = Body(parts[0]);
        Assert.Equal("units 0..14 of 30", body.GetProperty("covers").GetProperty("units").GetString());
        Assert.Equal("edge/specific/mean-corrupt/ablate-clean/complement", body.GetProperty("covers").GetProperty("methodologies")[0].GetString());
        Assert.Equal(15, body.GetProperty("covers").GetProperty("prompts").GetArrayLength());   // 15 units: 15 parts, prompts 0..1 of each
        Assert.Equal(64, body.GetProperty("identity").GetProperty("model parameters (sha256)").GetString()!.Length);
        Assert.Equal("mean-corrupt", body.GetProperty("identity").GetProperty("option --ablation").GetString());
        Assert.Equal("logit-diff-recovered,kl", body.GetProperty("identity").GetProperty("metrics").GetString());
    }

    [Fact]
    public void EdgeAttributionOnTinyGpt2MergesIntoTheUnshardedScores()
    {
        // Three batches, one per shard: the merge sums their gradient contributions in batch order, as the whole run does.
        string[] args = { "discover", "--model", TestFiles.Fixture("tiny-gpt2"), "--task", "tracr-reverse", "--algorithm", "eap", "--prompts", "12", "--batch-size", "4", "--json" };
        var (whole, parts) = RunWholeAndSharded("eap", 3, new[] { "--out", File("whole.json") }, args);
        var merged = Merge(parts.Concat(new[] { "--out", File("merged.json") }).ToArray());
        Assert.Equal(whole, merged.Out);
        Assert.True(System.IO.File.ReadAllBytes(File("whole.json")).SequenceEqual(System.IO.File.ReadAllBytes(File("merged.json"))), "the merged scores file differs");
        Assert.Equal(new[] { "tracr-reverse: 4..7" }, Body(parts[1]).GetProperty("covers").GetProperty("prompts").EnumerateArray().Select(e => e.GetString()));
        // The merge needs no model: it rebuilt the graph from the recorded config.
        Assert.Contains("\"graph\":", merged.Out);
        var csv = CliRunner.Run(new[] { "merge" }.Concat(parts).Concat(new[] { "--csv", File("x.csv") }).ToArray());
        Assert.Equal(1, csv.ExitCode);
        Assert.Contains("`discover` has no per-prompt rows", csv.Err);
    }

    [Fact]
    public void AcdcThresholdsOnTracrXProportionMergeIntoTheUnshardedText()
    {
        // 15 thresholds (bases 1,3,5,7,9 x exponents -3..-1) in 3 shards; a score is the smallest removing threshold over all runs.
        string[] args = { "discover", "--model", "tracr-xproportion", "--task", "tracr-xproportion", "--algorithm", "acdc", "--tau-exponents", "-3..-1",
            "--prompts", "20", "--threads", "1", "--top", "10" };
        var (whole, parts) = RunWholeAndSharded("acdc", 3, Array.Empty<string>(), args);
        Assert.Equal(whole, Merge(parts).Out);
        Assert.Contains("ACDC, edge search", whole);
        var thresholds = Body(parts[0]).GetProperty("covers").GetProperty("thresholds").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(new[] { 1e-3, 1e-2, 1e-1, 3e-3, 3e-2 }, thresholds, (a, b) => Math.Abs(a - b) <= 1e-15);   // units 0..4: bases outer, exponents inner
    }

    [Fact]
    public void RocOfNodeHispScoresMergesIntoTheUnshardedCurves()
    {
        string[] args = { "roc", "--model", "tracr-reverse", "--task", "tracr-reverse", "--algorithm", "hisp", "--search", "node", "--prompts", "12", "--batch-size", "5",
            "--truth", "tracr-reverse-ours,tracr-reverse-theirs", "--json" };
        var (whole, parts) = RunWholeAndSharded("roc", 2, Array.Empty<string>(), args);
        var merged = Merge(parts[1], parts[0], "--out", File("merged.json"));
        Assert.Equal(whole, merged.Out);
        AssertSameBytes(whole, File("merged.json"));
        using var doc = JsonDocument.Parse(whole);
        Assert.Equal(2, doc.RootElement.GetProperty("curves").GetArrayLength());
    }
}
