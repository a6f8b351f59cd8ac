using System.Text.Json;
using Workbook.Discovery;

namespace Workbook.Tests.Cli;

/// <summary>The discover and roc verbs, run in process on the embedded Tracr models.</summary>
public class DiscoveryCliTests
{
    static CliRunner.Result Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void DiscoverWritesTheSameJsonForTheSameSeed()
    {
        string[] Args(int seed) => new[] { "discover", "--model", "tracr-xproportion", "--task", "tracr-xproportion", "--algorithm", "sp", "--epochs", "3",
            "--prompts", "40", "--seed", seed.ToString(), "--threads", "1", "--json" };
        var first = Run(Args(1));
        Assert.True(first.ExitCode == 0, first.Err);
        var second = Run(Args(1));
        Assert.Equal(first.Out, second.Out);
        Assert.NotEqual(first.Out, Run(Args(2)).Out);
        using var doc = JsonDocument.Parse(first.Out);
        var root = doc.RootElement;
        Assert.Equal("sp", root.GetProperty("algorithm").GetString());
        Assert.Equal("edge", root.GetProperty("search").GetString());
        Assert.Equal("mean-corrupt", root.GetProperty("ablation").GetString());
        Assert.Equal("mse-answers", root.GetProperty("target").GetString());
        Assert.Equal(40, root.GetProperty("prompts").GetInt32());
        Assert.Equal("3", root.GetProperty("settings").GetProperty("epochs").GetString());
        var edges = root.GetProperty("edges");
        Assert.Equal(23, edges.GetArrayLength());
        Assert.Equal("Resid Start", edges[0].GetProperty("src").GetString());
        Assert.All(edges.EnumerateArray(), e => Assert.True(e.GetProperty("score").GetDouble() >= 0));
    }

    [Fact]
    public void DiscoverOutFileFeedsRoc()
    {
        string dir = Directory.CreateTempSubdirectory("wb-discover").FullName;
        try
        {
            string file = Path.Combine(dir, "scores.json");
            var run = Run("discover", "--model", "tracr-reverse", "--task", "tracr-reverse", "--algorithm", "acdc", "--out", file, "--top", "3", "--threads", "1");
            Assert.True(run.ExitCode == 0, run.Err);
            Assert.Contains("+inf", run.Out);                                   // ACDC's never-removed edges
            Assert.Contains("A3.0->Resid End", run.Out);
            Assert.Equal(new[] { file }, Directory.GetFiles(dir));               // nothing half-written beside it
            var back = ScoresJson.ReadFile(file);
            Assert.Equal(77, back.Edges.Count);
            Assert.Equal(double.PositiveInfinity, back.Edges.Single(e => e.Key == "Resid Start->A3.0.V").Value);
            Assert.Contains("\"score\":\"Infinity\"", File.ReadAllText(file));

            var roc = Run("roc", "--scores", file, "--truth", "tracr-reverse-ours,tracr-reverse-theirs", "--json");
            Assert.True(roc.ExitCode == 0, roc.Err);
            using var doc = JsonDocument.Parse(roc.Out);
            var curves = doc.RootElement.GetProperty("curves");
            Assert.Equal(1.0, curves[0].GetProperty("auc").GetDouble());
            Assert.Equal(1.0, curves[0].GetProperty("tprAtZeroFpr").GetDouble());
            Assert.Equal(0.2, curves[1].GetProperty("tprAtZeroFpr").GetDouble(), 12);
            var points = curves[0].GetProperty("points");
            Assert.Equal(0.0, points[0].GetProperty("fpr").GetDouble());
            Assert.Equal(1.0, points[points.GetArrayLength() - 1].GetProperty("tpr").GetDouble());

            // Text output; the task's own circuit is the default truth.
            var text = Run("roc", "--scores", file);
            Assert.True(text.ExitCode == 0, text.Err);
            Assert.Contains("truth tracr-reverse-ours (2 of 77 edges): AUC 1.000", text.Out);

            // Scores of one model against another model's circuit: a clear error, even where the edge names happen to exist.
            var wrong = Run("roc", "--scores", file, "--truth", "tracr-xproportion-ours");
            Assert.Equal(1, wrong.ExitCode);
            Assert.Contains("belongs to model 'tracr-xproportion' (23 edges)", wrong.Err);
            // A circuit file names no model: its edges must be scored.
            string circuitFile = Path.Combine(dir, "circuit.json");
            File.WriteAllText(circuitFile, "{\"edges\":[{\"src\":\"A3.0\",\"dest\":\"Resid Endd\",\"position\":null}]}");
            var unknown = Run("roc", "--scores", file, "--truth", circuitFile);
            Assert.Equal(1, unknown.ExitCode);
            Assert.Contains("A3.0->Resid Endd", unknown.Err);
            Assert.Contains("A3.0->Resid End", unknown.Err.Replace("A3.0->Resid Endd", ""));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void RocCanDiscoverAndCompareInOneGo()
    {
        var run = Run("roc", "--model", "tracr-xproportion", "--task", "tracr-xproportion", "--algorithm", "eap", "--search", "node",
            "--truth", "tracr-xproportion-ours", "--threads", "1");
        Assert.True(run.ExitCode == 0, run.Err);
        Assert.Contains("eap, node search, tracr-xproportion", run.Out);
        Assert.Contains("truth tracr-xproportion-ours (3 of 23 edges)", run.Out);
    }

    [Theory]
    [InlineData("discover --model tracr-reverse --task tracr-reverse --algorithm acdd", "acdc")]
    [InlineData("discover --model tracr-reverse --task tracr-reverse --algorithm eap --search nodes2", "edge or node")]
    [InlineData("discover --model tracr-reverse --task tracr-reverse --algorithm eap --target mse-answers", "numeric answers")]
    [InlineData("discover --model tracr-xproportion --task tracr-xproportion --algorithm eap --target logit-diff", "token answers")]
    [InlineData("discover --model tracr-reverse --task tracr-reverse --algorithm acdc --tau-exponents 3..1", "empty")]
    [InlineData("roc --scores /nonexistent/scores.json", "File not found")]
    [InlineData("roc --truth tracr-reverse-ours", "--scores")]
    public void BadInputGivesAClearError(string args, string expected)
    {
        var run = Run(args.Split(' '));
        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("error: ", run.Err);
        Assert.Contains(expected, run.Err);
    }

    [Fact]
    public void ANonScoresFileIsRejected()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "{\"edges\":[]}");
            var run = Run("roc", "--scores", file);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("not a scores file", run.Err);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
