using System.Text.Json;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Sharding;
using Workbook.Util;

namespace Workbook.Tests.Sharding;

/// <summary>Shard arithmetic, the evaluation split/combine, the part file format and the checks a merge makes; no model runs.</summary>
public sealed class ShardingTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-sharding-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("0/3", "K must be between 1 and N=3")]
    [InlineData("4/3", "K must be between 1 and N=3")]
    [InlineData("1/0", "N must be at least 1")]
    [InlineData("abc", "expected K/N")]
    [InlineData("3", "expected K/N")]
    [InlineData("1/2/3", "expected K/N")]
    [InlineData("-1/3", "not a whole number")]
    [InlineData("1.5/3", "not a whole number")]
    [InlineData("1/x", "N 'x' is not a whole number")]
    [InlineData("1/99999999999", "not a whole number")]
    [InlineData("1/100001", "at most 100,000")]
    public void BadShardSpecificationsAreRefusedWithTheReason(string text, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => Shard.Parse(text));
        Assert.Contains($"--shard '{text}'", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ShardsPartitionTheUnitsIntoNearEqualContiguousRanges()
    {
        Assert.Equal(new Shard(2, 8), Shard.Parse("2/8"));
        for (int units = 1; units <= 40; units++)
            for (int n = 1; n <= units; n++)
            {
                var ranges = Enumerable.Range(1, n).Select(k => new Shard(k, n).Units(units, "test")).ToArray();
                Assert.Equal(0, ranges[0].Start);
                Assert.Equal(units, ranges[^1].End);
                for (int k = 1; k < n; k++) Assert.Equal(ranges[k - 1].End, ranges[k].Start);   // contiguous, no overlap, no gap
                Assert.All(ranges, r => Assert.InRange(r.Count, units / n, (units + n - 1) / n));   // never empty, sizes differ by at most one
            }
        var e = Assert.Throws<ArgumentException>(() => new Shard(5, 5).Units(4, "one unit per batch"));
        Assert.Equal("Shard 5/5: this run has only 4 work units (one unit per batch); use at most 4 shards.", e.Message);
    }

    /// <summary>A hand-made evaluation: two parts of 5 and 3 prompts, three methodologies, two metrics, batches of 2.</summary>
    static (EvaluationPlan Plan, EvaluationResult Result) HandMadeEvaluation()
    {
        var methodologies = new[]
        {
            new Methodology(), new Methodology { Value = AblationValue.Zero, Positions = TokenPositions.All },
            new Methodology { Component = Component.Node, Value = AblationValue.Mean(MeanOver.CleanAndCorrupt), Ablate = AblatedSet.Circuit },
        };
        var metrics = new[] { MetricKind.LogitDiffRecovered, MetricKind.Kl };
        var parts = new[] { new PartSize("ABBA-0", 5), new PartSize("BABA-1", 3) };
        var plan = new EvaluationPlan
        {
            Task = "ioi", Circuit = "toy-ioi", Model = "toy", Methodologies = methodologies.Select(MethodologyEntry.Of).ToArray(),
            Metrics = metrics.Select(m => m.Label).ToArray(), Parts = parts, BatchSize = 2,
            Units = EvaluationUnits.Enumerate(parts.Select(p => p.Prompts).ToArray(), methodologies.Length, 2).Count,
        };
        // Values chosen to stress a round trip: non-finite, negative zero, subnormal, long mantissas.
        var special = new[] { double.NaN, -0.0, double.Epsilon, Math.PI / 3, double.PositiveInfinity, 1e-300, -123456.789012345678 };
        var rows = new List<EvaluationRow>();
        var baseline = new List<BaselineRow>();
        int n = 0;
        // The evaluator's order: part, then (unpatched values: batch, metric, prompt) and (methodology, batch, metric, prompt).
        foreach (var part in parts)
        {
            for (int start = 0; start < part.Prompts; start += 2)
                foreach (var metric in metrics)
                    for (int i = start; i < Math.Min(start + 2, part.Prompts); i++) baseline.Add(new BaselineRow(part.Name, i, metric, special[n++ % special.Length] + 1));
            foreach (var m in methodologies)
                for (int start = 0; start < part.Prompts; start += 2)
                    foreach (var metric in metrics)
                        for (int i = start; i < Math.Min(start + 2, part.Prompts); i++) rows.Add(new EvaluationRow("ioi", part.Name, i, m, metric, special[n++ % special.Length]));
        }
        return (plan, new EvaluationResult(rows, baseline));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(15)]
    public void EvaluationUnitsSplitAndCombineIntoTheSameRowsInTheSameOrder(int shards)
    {
        var (plan, result) = HandMadeEvaluation();
        Assert.Equal(15, plan.Units);   // (3 batches of 5 prompts + 2 batches of 3 prompts) × 3 methodologies
        var units = new List<EvaluationUnitResult>();
        for (int k = 1; k <= shards; k++)
        {
            var mine = EvaluationShards.Split(plan, result, new Shard(k, shards).Units(plan.Units, "test"));
            // Through the part file's JSON, as a merge reads them: values must come back bit for bit.
            var json = JsonSerializer.Serialize(mine, ShardPartFile.JsonOptions);
            units.AddRange(JsonSerializer.Deserialize<List<EvaluationUnitResult>>(json, ShardPartFile.JsonOptions)!);
        }
        var back = EvaluationShards.Combine(JsonSerializer.Deserialize<EvaluationPlan>(JsonSerializer.Serialize(plan, ShardPartFile.JsonOptions), ShardPartFile.JsonOptions)!, units);
        Assert.Equal(result.Rows.Count, back.Rows.Count);
        for (int i = 0; i < result.Rows.Count; i++)
        {
            var (a, b) = (result.Rows[i], back.Rows[i]);
            Assert.Equal((a.Task, a.Part, a.Prompt, a.Methodology, a.Metric), (b.Task, b.Part, b.Prompt, b.Methodology, b.Metric));
            Assert.Equal(BitConverter.DoubleToInt64Bits(a.Value), BitConverter.DoubleToInt64Bits(b.Value));
        }
        Assert.Equal(result.FullModel.Select(r => (r.Part, r.Prompt, r.Metric, BitConverter.DoubleToInt64Bits(r.Value))),
            back.FullModel.Select(r => (r.Part, r.Prompt, r.Metric, BitConverter.DoubleToInt64Bits(r.Value))));
        // The exports are therefore byte-identical too.
        Assert.Equal(EvaluationExport.RowsCsv(result.Rows), EvaluationExport.RowsCsv(back.Rows));
    }

    [Fact]
    public void CombineRefusesAMissingOrMisplacedUnit()
    {
        var (plan, result) = HandMadeEvaluation();
        var all = EvaluationShards.Split(plan, result, UnitRange.All(plan.Units)).ToList();
        var missing = all.Where(u => u.Index != 4).ToList();
        Assert.Contains("15 work units, but 14", Assert.Throws<ArgumentException>(() => EvaluationShards.Combine(plan, missing)).Message);
        var swapped = all.ToList();
        (swapped[3], swapped[4]) = (swapped[4], swapped[3]);
        Assert.Contains("Work unit 3 is missing", Assert.Throws<ArgumentException>(() => EvaluationShards.Combine(plan, swapped)).Message);
        var wrong = all.ToList();
        wrong[2] = wrong[2] with { Values = wrong[2].Values.Take(1).ToArray() };
        Assert.Contains("should list the metrics", Assert.Throws<ArgumentException>(() => EvaluationShards.Combine(plan, wrong)).Message);
    }

    [Fact]
    public void DiscoveryCombineReducesContributionsInBatchOrderAndThresholdsByTheirMinimum()
    {
        // EAP: (c0 + c1 + c2) / prompts, added left to right, whatever shards the batches came from.
        double[][] c = { new[] { 0.1, -2.0 }, new[] { 0.2, 1e-17 }, new[] { 0.3, 2.0 } };
        var scores = Attribution.Reduce(c, 2, 4);
        Assert.Equal(((0.1 + 0.2) + 0.3) / 4, scores[0]);
        Assert.Equal(((-2.0 + 1e-17) + 2.0) / 4, scores[1]);
        // ACDC: an edge's score is the smallest threshold of a run that removed it, +∞ otherwise, in any grouping of the runs.
        var graph = Workbook.Graph.ComputationGraph.Factorized(Workbook.Embedded.TracrXProportion.Config, separateQkv: true);
        var runs = new[] { new AcdcRun(3e-3, new[] { graph.Edges[0], graph.Edges[2] }, 0), new AcdcRun(1e-3, new[] { graph.Edges[2] }, 0) };
        var acdc = Acdc.Scores(graph, runs);
        Assert.Equal(3e-3, acdc[0]);
        Assert.Equal(1e-3, acdc[2]);
        Assert.Equal(double.PositiveInfinity, acdc[1]);
        Assert.Equal(acdc, Acdc.Scores(graph, runs.Reverse()));
    }

    static ShardPart Part(string shard, int total, string command = "eval", string seed = "0") => new()
    {
        Command = command, Shard = shard, TotalUnits = total, Units = Shard.Parse(shard).Units(total, "test"),
        Identity = new Dictionary<string, string> { ["command"] = command, ["option --seed"] = seed },
        Covers = new ShardCoverage { Units = "test" },
        Result = ShardPartFile.ToElement(new { values = new[] { 1.5, double.NaN } }),
    };

    [Fact]
    public void PartFilesRoundTripAndRefuseDamage()
    {
        string path = Path.Combine(_dir, "p.json");
        ShardPartFile.WriteFile(path, Part("2/3", 7));
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir));   // no temporary file left beside it
        var back = ShardPartFile.ReadFile(path);
        Assert.Equal(("eval", "2/3", 7, new UnitRange(2, 4)), (back.Command, back.Shard, back.TotalUnits, back.Units));
        Assert.Equal("0", back.Identity["option --seed"]);
        Assert.Equal("NaN", back.Result.GetProperty("values")[1].GetString());

        string text = File.ReadAllText(path);
        string Damaged(string name, string contents)
        {
            string p = Path.Combine(_dir, name);
            File.WriteAllText(p, contents);
            return Assert.Throws<FormatException>(() => ShardPartFile.ReadFile(p)).Message;
        }
        Assert.Contains("do not match their recorded SHA-256", Damaged("edited.json", text.Replace("1.5", "1.6")));
        Assert.Contains("'" + Path.Combine(_dir, "truncated.json") + "' is not a usable workbook part file", Damaged("truncated.json", text[..(text.Length / 2)]));
        Assert.Contains("expected 'workbook-shard-part/1'", Damaged("format.json", text.Replace("workbook-shard-part/1", "workbook-shard-part/9")));
        Assert.Contains("has no \"body\"", Damaged("scores.json", "{\"format\":\"workbook-shard-part/1\",\"sha256\":\"00\"}"));
    }

    [Fact]
    public void AMergeNeedsEveryShardOfOneRunOnce()
    {
        ShardPartInput In(string file, ShardPart part) => new(file, part);
        var parts = new[] { In("a", Part("1/3", 7)), In("b", Part("2/3", 7)), In("c", Part("3/3", 7)) };
        Assert.Equal(new[] { "a", "b", "c" }, ShardSet.Check(new[] { parts[2], parts[0], parts[1] }).Select(p => p.File));

        string Refusal(params ShardPartInput[] given)
        {
            var message = Assert.Throws<ArgumentException>(() => ShardSet.Check(given)).Message;
            Assert.DoesNotContain('\n', message);
            return message;
        }
        Assert.Equal("Shard 2/3 is missing (given: 'a', 'c'); a merge needs every shard of the run.", Refusal(parts[0], parts[2]));
        Assert.Equal("'b' and 'b2' are both shard 2/3: they overlap; give each shard once.", Refusal(parts[0], parts[1], In("b2", Part("2/3", 7)), parts[2]));
        Assert.Contains("is given twice", Refusal(parts[0], parts[1], parts[1], parts[2]));
        Assert.Equal("'d' is a part of `report` but 'a' is a part of `eval`; merge the parts of one run only.", Refusal(parts[0], parts[1], In("d", Part("3/3", 7, "report"))));
        Assert.Equal("'d' is shard 2/4 but 'a' is shard 1/3; the parts of one run share N.", Refusal(parts[0], In("d", Part("2/4", 7))));
        Assert.Equal("'d' and 'a' are parts of different runs: their option --seed is '1' and '0'.", Refusal(parts[0], parts[1], In("d", Part("3/3", 7, seed: "1"))));
        Assert.Contains("it was not written by this workbook's --shard", Refusal(parts[0], parts[1], In("d", Part("3/3", 7) with { Units = new UnitRange(3, 7) })));
    }

    [Fact]
    public void AtomicWritesOfSeveralFilesChangeNothingWhenOneCannotBeWritten()
    {
        string a = Path.Combine(_dir, "a.json");
        File.WriteAllText(a, "old");
        Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.WriteAllTexts(new[] { (a, "new"), (Path.Combine(_dir, "missing", "b.csv"), "rows") }));
        Assert.Equal("old", File.ReadAllText(a));
        Assert.Equal(new[] { a }, Directory.GetFiles(_dir));   // the finished temporary file of a.json was removed
        AtomicFile.WriteAllTexts(new[] { (a, "new"), (Path.Combine(_dir, "b.csv"), "rows") });
        Assert.Equal("new", File.ReadAllText(a));
        Assert.Equal(2, Directory.GetFiles(_dir).Length);
    }
}
