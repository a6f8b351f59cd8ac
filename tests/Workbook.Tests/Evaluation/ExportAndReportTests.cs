using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Support;

namespace Workbook.Tests.Evaluation;

public class ExportAndReportTests
{
    static readonly Methodology Resample = new();
    static readonly Methodology Mean = new() { Value = AblationValue.Mean(MeanOver.Corrupt), Positions = TokenPositions.All };

    static List<EvaluationRow> Rows() => new()
    {
        new("ioi", "ABBA-0", 0, Resample, MetricKind.LogitDiffRecovered, 87.5),
        new("ioi", "ABBA-0", 1, Resample, MetricKind.LogitDiffRecovered, 1.0 / 3),
        new("ioi", "ABBA-0", 0, Mean, MetricKind.LogitDiffRecovered, double.NaN),
        new("ioi", "ABBA-0", 1, Mean, MetricKind.LogitDiffRecovered, -1e-7),
    };

    [Fact]
    public void CsvIsInvariantAndRoundTrips()
    {
        var previous = Thread.CurrentThread.CurrentCulture;
        try
        {
            Thread.CurrentThread.CurrentCulture = new System.Globalization.CultureInfo("de-DE"); // decimal comma must not leak
            string csv = EvaluationExport.RowsCsv(Rows());
            var lines = csv.TrimEnd('\n').Split('\n');
            Assert.Equal(string.Join(',', EvaluationExport.RowColumns), lines[0]);
            Assert.Equal("ioi,ABBA-0,0,edge/specific/resample/ablate-clean/complement,edge,qkv,resample,specific,ablate-clean,complement,logit-diff-recovered,87.5", lines[1]);
            Assert.Equal(1.0 / 3, double.Parse(lines[2].Split(',')[^1], System.Globalization.CultureInfo.InvariantCulture));
            Assert.EndsWith(",NaN", lines[3]);
            Assert.EndsWith(",-1E-07", lines[4]);
            Assert.Equal(csv, EvaluationExport.RowsCsv(Rows()));
            var summaries = Summaries.ByMethodology(Rows());
            string summaryCsv = EvaluationExport.SummariesCsv(summaries);
            Assert.Equal(3, summaryCsv.TrimEnd('\n').Split('\n').Length);
            Assert.Contains(",mean-corrupt,all,", summaryCsv);
        }
        finally
        {
            Thread.CurrentThread.CurrentCulture = previous;
        }
    }

    [Fact]
    public void JsonHasSummaryAndRows()
    {
        string json = EvaluationExport.Json(Summaries.ByMethodology(Rows()), Rows());
        using var doc = JsonDocument.Parse(json);
        var summary = doc.RootElement.GetProperty("summary");
        Assert.Equal(2, summary.GetArrayLength());
        Assert.Equal("edge/specific/resample/ablate-clean/complement", summary[0].GetProperty("methodology").GetString());
        Assert.Equal((87.5 + 1.0 / 3) / 2, summary[0].GetProperty("mean").GetDouble(), 12);
        Assert.Equal((87.5 + 1.0 / 3) / 2, summary[0].GetProperty("median").GetDouble(), 12);
        Assert.Equal(1, summary[1].GetProperty("values").GetProperty("nonFinite").GetInt32());
        var rows = doc.RootElement.GetProperty("rows");
        Assert.Equal(4, rows.GetArrayLength());
        Assert.Equal("NaN", rows[2].GetProperty("value").GetString());
        Assert.Equal("logit-diff-recovered", rows[0].GetProperty("metric").GetString());
        Assert.Equal(json, EvaluationExport.Json(Summaries.ByMethodology(Rows()), Rows()));
    }

    [Fact]
    public void ReportCoversTheGridOrdersByFaithfulnessAndNamesTheInfluentialChoice()
    {
        var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        var graph = ComputationGraph.Factorized(model.Config);
        var residual = ComputationGraph.Residual(model.Config);
        // A node circuit and an edge circuit of the same heads, at labelled positions, as a family.
        var nodes = OfficialCircuits.NodeCircuit("tiny-nodes", "test", model.Config, new (string, string?)[] { ("A2.1", "end"), ("A1.3", "middle"), ("A0.0", null) });
        var edgeList = graph.Edges.Where(e => e.Destination.Name == "Resid End" || e.Source.Name == "Resid Start")
            .Select(e => new SymbolicEdge(e.Source.Name, e.Destination.Name, e.Destination.Name == "Resid End" ? "end" : "first"));
        var edges = new SymbolicCircuit("tiny-edges", "test", GraphView.Factorized, true, edgeList);
        var choice = CircuitChoice.Family("tiny", nodes, edges);
        var methodologies = RobustnessReport.Methodologies(new ReportGrid(), choice, MeanOver.Corrupt);
        Assert.Equal(2 * 3 * 2 * 2, methodologies.Count);
        var result = Evaluator.RunWithBaseline(new EvaluationRequest
        {
            Model = model, Task = EvaluationTests.TokenTask, Parts = new[] { TokenizedDataset.Create(EvaluationTests.TokenDataset(1, 10), null, false, false) },
            Circuit = choice, Methodologies = methodologies, Metrics = new[] { MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans }, BatchSize = 10,
        });
        var report = RobustnessReport.Build("token-task", "tiny", "tiny-gpt2", MetricKind.LogitDiffRecovered, result, methodologies, seed: 0, resamples: 200);
        Assert.Equal(12, report.Faithfulness.Count);
        Assert.Equal(12, report.CircuitAblated.Count);
        Assert.Equal(10, report.Prompts);
        Assert.Equal(100, report.FullModelMedian, 9);
        Assert.Equal(Enumerable.Range(1, 12), report.Faithfulness.Select(e => e.Rank));
        Assert.True(report.Faithfulness.Zip(report.Faithfulness.Skip(1)).All(p => p.First.Deviation <= p.Second.Deviation));
        Assert.All(report.Faithfulness, e => Assert.Equal(AblatedSet.Complement, e.Methodology.Ablate));
        Assert.All(report.Faithfulness, e => Assert.NotNull(e.RatioOfMeans));
        var s = report.Sensitivity;
        Assert.Equal(report.Faithfulness.Min(e => e.Values.Median), s.MinMedian);
        Assert.Equal(report.Faithfulness.Max(e => e.Values.Median), s.MaxMedian);
        Assert.Equal(new[] { "component", "ablation value", "token positions", "ablated set" }, s.Factors.Select(f => f.Factor));
        Assert.Equal(s.Factors.Where(f => f.Factor != "ablated set").MaxBy(f => f.MeanShift)!.Factor, s.MostInfluentialFactor);
        Assert.Contains(s.MostInfluentialFactor!, s.Statement);
        // The value factor compares resample, mean and zero with everything else fixed: 2 components × 2 position modes.
        Assert.Equal(4, s.Factors.Single(f => f.Factor == "ablation value").Comparisons);
        string text = report.ToText();
        Assert.Contains("most faithful first", text);
        Assert.Contains(report.Faithfulness[0].Label, text);
    }
}
