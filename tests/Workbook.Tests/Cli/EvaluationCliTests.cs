using System.Text.Json;
using Workbook.Cli;
using Workbook.Circuits;
using Workbook.Tests.Support;

namespace Workbook.Tests.Cli;

/// <summary>The circuit, eval and report verbs, run in process.</summary>
public class EvaluationCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = WorkbookCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void CircuitPrintsEdgesWithPositionLabels()
    {
        var (code, output, _) = Run("circuit", "ioi-edges", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var edges = doc.RootElement.GetProperty("edges");
        Assert.Equal(869, edges.GetArrayLength());
        Assert.Contains(edges.EnumerateArray(), e => e.GetProperty("src").GetString() == "A9.9" && e.GetProperty("dest").GetString() == "Resid End"
            && e.GetProperty("position").GetString() == "end");
        // The JSON reads back into the same circuit.
        var back = SymbolicCircuitJson.Read(output, "x");
        Assert.Equal(OfficialCircuits.Get("ioi-edges").Circuit.Edges, back.Edges);

        var nodes = Run("circuit", "ioi-nodes", "--json").Out;
        using var nodesDoc = JsonDocument.Parse(nodes);
        Assert.Equal(62, nodesDoc.RootElement.GetProperty("edges").GetArrayLength());
        Assert.Equal("node", nodesDoc.RootElement.GetProperty("component").GetString());
        var docstring = JsonDocument.Parse(Run("circuit", "docstring-edges", "--json").Out).RootElement.GetProperty("edges");
        Assert.Contains(docstring.EnumerateArray(), e => e.GetProperty("dest").GetString() == "A2.0.K" && e.GetProperty("src").GetString() == "Resid Start"
            && e.GetProperty("position").ValueKind == JsonValueKind.Null && e.GetProperty("allTokensOnly").GetBoolean());

        var text = Run("circuit", "tracr-xproportion-theirs").Out;
        Assert.Contains("Resid Start->A1.0.Q", text);
        var (bad, _, err) = Run("circuit", "ioi-edge");
        Assert.Equal(1, bad);
        Assert.Contains("ioi-edges", err);
        Assert.Contains("ioi-nodes", Run("circuit").Out);
    }

    [Fact]
    public void EvalWritesSummaryAndRowsAsJsonAndCsv()
    {
        string dir = Directory.CreateTempSubdirectory("wb-eval").FullName;
        try
        {
            string circuit = Path.Combine(dir, "c.json");
            File.WriteAllText(circuit, "{\"edges\":[{\"src\":\"Resid Start\",\"dest\":\"A1.0.V\",\"position\":null},{\"src\":\"A1.0\",\"dest\":\"Resid End\",\"position\":3}]}");
            string csv = Path.Combine(dir, "rows.csv");
            var (code, output, error) = Run("eval", "--model", TestFiles.Fixture("tiny-gpt2"), "--task", "tracr-reverse", "--circuit", circuit,
                "--ablation", "mean-corrupt", "--positions", "all", "--metric", "logit-diff-recovered,kl", "--prompts", "6", "--batch-size", "4", "--csv", csv, "--json");
            Assert.True(code == 0, error);
            using var doc = JsonDocument.Parse(output);
            var summary = doc.RootElement.GetProperty("summary");
            Assert.Equal(2, summary.GetArrayLength());
            Assert.Equal("edge/all/mean-corrupt/ablate-clean/complement", summary[0].GetProperty("methodology").GetString());
            Assert.True(summary[0].TryGetProperty("mean", out _) && summary[0].TryGetProperty("median", out _));
            Assert.Equal(12, doc.RootElement.GetProperty("rows").GetArrayLength());
            Assert.Equal(13, File.ReadAllLines(csv).Length);
            Assert.Contains("evaluation 6/6 prompts (100%)", error); // progress on stderr
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--task", "ioi", "has no tokenizer")]
    [InlineData("--task", "tracr-reverse", "Unknown destination node 'A3.0.V'")]
    [InlineData("--task", "tracr-reversed", "Did you mean 'tracr-reverse'")]
    public void EvalErrorsSayWhatIsWrong(string option, string value, string expected)
    {
        var (code, _, error) = Run("eval", "--model", TestFiles.Fixture("tiny-gpt2"), option, value, "--prompts", "2");
        Assert.Equal(1, code);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void EvalRejectsBadMethodologyOptions()
    {
        var (code, _, error) = Run("eval", "--model", TestFiles.Fixture("tiny-gpt2"), "--task", "tracr-reverse", "--circuit", "tracr-reverse-ours", "--ablation", "mean");
        Assert.Equal(1, code);
        Assert.Contains("mean-corrupt", error);
        (code, _, error) = Run("eval", "--model", TestFiles.Fixture("tiny-gpt2"), "--task", "ioi", "--circuit", "ioi-edges", "--component", "node");
        Assert.Equal(1, code);
        Assert.Contains("use 'ioi'", error);
    }

    [Fact]
    public void ReportRunsTheGridAndPrintsTheSensitivity()
    {
        string dir = Directory.CreateTempSubdirectory("wb-report").FullName;
        try
        {
            string circuit = Path.Combine(dir, "c.json");
            File.WriteAllText(circuit, "{\"edges\":[{\"src\":\"MLP 0\",\"dest\":\"Resid End\",\"position\":null},{\"src\":\"A1.0\",\"dest\":\"Resid End\",\"position\":3}]}");
            var (code, output, error) = Run("report", "--model", TestFiles.Fixture("tiny-gpt2"), "--task", "tracr-reverse", "--circuit", circuit,
                "--prompts", "6", "--values", "resample,zero", "--json");
            Assert.True(code == 0, error);
            using var doc = JsonDocument.Parse(output);
            Assert.Equal(4, doc.RootElement.GetProperty("faithfulness").GetArrayLength()); // 2 values × 2 position modes
            Assert.Equal(4, doc.RootElement.GetProperty("circuitAblated").GetArrayLength());
            Assert.Equal("logit-diff-recovered", doc.RootElement.GetProperty("metric").GetString());
            Assert.Contains("moves the median most", doc.RootElement.GetProperty("sensitivity").GetProperty("statement").GetString());
            var text = Run("report", "--model", TestFiles.Fixture("tiny-gpt2"), "--task", "tracr-reverse", "--circuit", circuit, "--prompts", "6", "--values", "zero", "--sets", "complement").Out;
            Assert.Contains("most faithful first", text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
