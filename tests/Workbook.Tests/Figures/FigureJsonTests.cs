using System.Text.Json.Nodes;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Figures;
using Workbook.Metrics;
using Workbook.Patching;

namespace Workbook.Tests.Figures;

/// <summary>The figure JSON against hand-built plotly descriptions: structure, clipping, reference lines, panels.</summary>
public class FigureJsonTests
{
    static JsonNode Json(Figure f) => JsonNode.Parse(f.ToJson())!;

    [Fact]
    public void ASmallBarChartSerializesToExactlyThePlotlyJsonWrittenByHand()
    {
        var figure = new Figure(
            new Trace[] { new BarTrace { Name = "a", X = new[] { "p", "q" }, Y = new[] { 1.5, double.NaN } } },
            new Layout { Title = new Title("T"), YAxis = new Axis { Range = new[] { 0.0, 2.0 } }, BarMode = "group" });
        const string expected =
            """{"data":[{"type":"bar","x":["p","q"],"y":[1.5,null],"name":"a"}],"layout":{"title":{"text":"T"},"yaxis":{"range":[0,2]},"barmode":"group"}}""";
        Assert.Equal(expected, figure.ToJson());
    }

    [Fact]
    public void JsonRoundTripsThroughFromJson()
    {
        var figure = Charts.Box(new[] { new BoxSeries("s", new[] { new BoxGroup("c", new[] { 1.0, 2.0, 3.0 }) }) },
            new ChartOptions { Title = "t", ReferenceLines = new[] { new ReferenceLine(2, "two") } });
        var again = Figure.FromJson(figure.ToJson());
        Assert.Equal(figure.ToJson(), again.ToJson());
        Assert.IsType<BoxTrace>(again.Data[0]);
    }

    [Fact]
    public void BoxPlotsCarryEveryPointPerCategoryAndGroupTheirSeries()
    {
        var figure = Charts.Box(new[]
        {
            new BoxSeries("Resample", new[] { new BoxGroup("Nodes", new[] { 10.0, 20.0 }), new BoxGroup("Edges", new[] { 30.0 }) }),
            new BoxSeries("Mean", new[] { new BoxGroup("Nodes", new[] { 40.0 }) }),
        }, new ChartOptions());
        var json = Json(figure);
        var first = json["data"]![0]!;
        Assert.Equal("box", (string?)first["type"]);
        Assert.Equal(new[] { "Nodes", "Nodes", "Edges" }, first["x"]!.AsArray().Select(n => (string?)n).ToArray());
        Assert.Equal(new[] { 10.0, 20.0, 30.0 }, first["y"]!.AsArray().Select(n => (double)n!).ToArray());
        Assert.Equal("all", (string?)first["boxpoints"]);
        Assert.Equal("group", (string?)json["layout"]!["boxmode"]);
        Assert.Equal(new[] { "Nodes", "Edges" }, json["layout"]!["xaxis"]!["categoryarray"]!.AsArray().Select(n => (string?)n).ToArray());
        Assert.Equal(2, json["data"]!.AsArray().Count);
    }

    [Fact]
    public void TheClipFixesTheAxisAndCountsWhatFallsOutsideOnlyWhenSomethingDoes()
    {
        var values = new[] { -800.0, 50, 100, 150, 900, 1000 };
        var clipped = Json(Charts.Box(new[] { new BoxSeries("s", new[] { new BoxGroup("c", values) }) }, new ChartOptions { YRange = (-700, 700) }));
        Assert.Equal(new[] { -700.0, 700.0 }, clipped["layout"]!["yaxis"]!["range"]!.AsArray().Select(n => (double)n!).ToArray());
        // Every value stays in the data, so plotly's quartiles are those of all prompts.
        Assert.Equal(6, clipped["data"]![0]!["y"]!.AsArray().Count);
        var notes = clipped["layout"]!["annotations"]!.AsArray().Select(a => (string?)a!["text"]).ToList();
        Assert.Contains("3 of 6 values beyond [-700, 700] not shown (1 below, 2 above)", notes);

        var inside = Json(Charts.Box(new[] { new BoxSeries("s", new[] { new BoxGroup("c", new[] { 1.0, 2.0 }) }) }, new ChartOptions { YRange = (-700, 700) }));
        Assert.Null(inside["layout"]!["yaxis"]!["range"]);
        Assert.Null(inside["layout"]!["annotations"]);
    }

    [Fact]
    public void ReferenceLinesSpanTheSubplotAtTheirValueWithALabel()
    {
        var json = Json(Charts.Bars(new[] { new BarSeries("s", new[] { new BarPoint("c", 3) }) },
            new ChartOptions { ReferenceLines = new[] { PaperFigures.PerfectFaithfulness, PaperFigures.Reported(87) } }));
        var shapes = json["layout"]!["shapes"]!.AsArray();
        Assert.Equal(2, shapes.Count);
        foreach (var (shape, y) in shapes.Zip(new[] { 100.0, 87.0 }))
        {
            Assert.Equal("line", (string?)shape!["type"]);
            Assert.Equal("x domain", (string?)shape["xref"]);
            Assert.Equal("y", (string?)shape["yref"]);
            Assert.Equal(0.0, (double)shape["x0"]!);
            Assert.Equal(1.0, (double)shape["x1"]!);
            Assert.Equal(y, (double)shape["y0"]!);
            Assert.Equal(y, (double)shape["y1"]!);
        }
        var labels = json["layout"]!["annotations"]!.AsArray().Select(a => (string?)a!["text"]).ToList();
        Assert.Equal(new[] { "Perfect faithfulness (100%)", "Reported (87%)" }, labels);
    }

    [Fact]
    public void UndefinedValuesAreLeftOutOfBoxesAndSaidSo()
    {
        var json = Json(Charts.Box(new[] { new BoxSeries("s", new[] { new BoxGroup("c", new[] { 1.0, double.NaN, double.PositiveInfinity, 2.0 }) }) }, new ChartOptions()));
        Assert.Equal(new[] { 1.0, 2.0 }, json["data"]![0]!["y"]!.AsArray().Select(n => (double)n!).ToArray());
        Assert.Contains("2 undefined value(s) left out", json["layout"]!["annotations"]!.AsArray().Select(a => (string?)a!["text"]));
    }

    [Fact]
    public void RocCurvesAreStepLinesWithTheChanceDiagonal()
    {
        var json = Json(Charts.Roc(new[] { new RocLine("ACDC", new[] { 0.0, 0.0, 1.0 }, new[] { 0.0, 1.0, 1.0 }, 1.0) }));
        var data = json["data"]!.AsArray();
        Assert.Equal(2, data.Count);
        Assert.Equal("chance", (string?)data[0]!["name"]);
        Assert.Equal("hv", (string?)data[1]!["line"]!["shape"]);
        Assert.Equal("ACDC (AUC 1.00)", (string?)data[1]!["name"]);
        Assert.Equal(new[] { 0.0, 0.0, 1.0 }, data[1]!["x"]!.AsArray().Select(n => (double)n!).ToArray());
        Assert.Equal("False positive rate", (string?)json["layout"]!["xaxis"]!["title"]!["text"]);
    }

    [Fact]
    public void LinesNeedAsManyXAsYValues()
    {
        var e = Assert.Throws<ArgumentException>(() => Charts.Lines(new[] { new LineSeries("s", new[] { 1.0, 2.0 }, new[] { 1.0 }) }, new ChartOptions()));
        Assert.Contains("2 x values but 1 y values", e.Message);
    }

    [Fact]
    public void PanelsGiveEachSubplotItsAxesAndReferencesAndOneLegendEntryPerSeries()
    {
        Figure Panel(string title) => Charts.Bars(new[] { new BarSeries("Resample", new[] { new BarPoint("c", 1) }) },
            new ChartOptions { Title = title, YTitle = title, ReferenceLines = new[] { new ReferenceLine(5, "five") } });
        var json = Json(Charts.Panels("both", new[] { Panel("left"), Panel("right") }));
        var data = json["data"]!.AsArray();
        Assert.Equal(new[] { "x", "x2" }, data.Select(d => (string?)d!["xaxis"]).ToArray());
        Assert.Equal(new[] { "y", "y2" }, data.Select(d => (string?)d!["yaxis"]).ToArray());
        Assert.Null(data[0]!["showlegend"]);
        Assert.False((bool)data[1]!["showlegend"]!);
        var layout = json["layout"]!;
        Assert.Equal("left", (string?)layout["yaxis"]!["title"]!["text"]);
        Assert.Equal("right", (string?)layout["yaxis2"]!["title"]!["text"]);
        Assert.Equal(1, (int)layout["grid"]!["rows"]!);
        Assert.Equal(2, (int)layout["grid"]!["columns"]!);
        Assert.Equal(new[] { "x domain", "x2 domain" }, layout["shapes"]!.AsArray().Select(s => (string?)s!["xref"]).ToArray());
        Assert.Equal(new[] { "y", "y2" }, layout["shapes"]!.AsArray().Select(s => (string?)s!["yref"]).ToArray());
        Assert.Contains(layout["annotations"]!.AsArray(), a => (string?)a!["text"] == "<b>right</b>" && (string?)a["xref"] == "x2 domain");
        Assert.Throws<ArgumentException>(() => Charts.Panels(null, Enumerable.Repeat(Panel("p"), 5).ToArray()));
    }

    [Fact]
    public void TheFragmentEscapesMarkupInLabelsSoNoLabelCanCloseTheScript()
    {
        var figure = Charts.Bars(new[] { new BarSeries("</script><b>", new[] { new BarPoint("c", 1) }) }, new ChartOptions());
        string html = FigureHtml.Fragment(figure);
        Assert.Equal(1, html.Split("</script>").Length - 1);
        Assert.Contains("window.Plotly.newPlot", html);
    }

    // ------------------------------------------------------------------ paper figures from hand-built rows

    static EvaluationRow Row(string part, int prompt, Methodology m, MetricKind metric, double value) => new("ioi", part, prompt, m, metric, value);

    static readonly Methodology NodeSpecificResample = new() { Component = Component.Node, Positions = TokenPositions.Specific, Value = AblationValue.Resample };
    static readonly Methodology EdgeAllMean = new() { Component = Component.Edge, Positions = TokenPositions.All, Value = AblationValue.Mean(MeanOver.Corrupt) };

    [Fact]
    public void Figure3NamesColumnsAndColoursAsThePaperAndDrawsTheReportedValue()
    {
        var rows = new[]
        {
            Row("ABBA-0", 0, NodeSpecificResample, MetricKind.LogitDiffRecovered, 60),
            Row("ABBA-0", 1, NodeSpecificResample, MetricKind.LogitDiffRecovered, 40),
            Row("ABBA-0", 0, EdgeAllMean, MetricKind.LogitDiffRecovered, -20),
            Row("ABBA-0", 0, EdgeAllMean, MetricKind.LogitDiffRecoveredOfMeans, 999), // the other metric is not plotted
        };
        var json = Json(PaperFigures.NodesEdgesTokensValues(new EvaluationResult(rows, Array.Empty<BaselineRow>()), reported: 87));
        var data = json["data"]!.AsArray();
        Assert.Equal(new[] { "Resample", "Mean (ABC)" }, data.Select(d => (string?)d!["name"]).ToArray());
        Assert.Equal(new[] { "Nodes / Specific Toks", "Nodes / Specific Toks" }, data[0]!["x"]!.AsArray().Select(n => (string?)n).ToArray());
        Assert.Equal(new[] { -20.0 }, data[1]!["y"]!.AsArray().Select(n => (double)n!).ToArray());
        Assert.Equal(new[] { 100.0, 87.0 }, json["layout"]!["shapes"]!.AsArray().Select(s => (double)s!["y0"]!).ToArray());
    }

    [Fact]
    public void Figure4AveragesPerTemplateThenOverTemplatesPerOrder()
    {
        var m = new Methodology { Component = Component.Node, Value = AblationValue.Mean(MeanOver.Batch) };
        // ABBA: template means 75 and 0 -> 37.5; BABA: one template, mean 10. Average of the orders: 23.75.
        var rows = new[]
        {
            Row("ABBA-0", 0, m, MetricKind.LogitDiffRecovered, 100), Row("ABBA-0", 1, m, MetricKind.LogitDiffRecovered, 50),
            Row("ABBA-1", 0, m, MetricKind.LogitDiffRecovered, 0), Row("BABA-0", 0, m, MetricKind.LogitDiffRecovered, 10),
        };
        var sweep = new AbcSizeSweep(new[] { new BatchSizePoint(2, rows) });
        var json = Json(PaperFigures.AggregationsOverBatchSize(sweep));
        var meanOfRatios = json["data"]!.AsArray().Where(d => (string?)d!["xaxis"] == "x2").ToDictionary(d => (string)d!["name"]!, d => (double)d!["y"]![0]!);
        Assert.Equal(37.5, meanOfRatios["ABBA"], 12);
        Assert.Equal(10, meanOfRatios["BABA"], 12);
        Assert.Equal(23.75, meanOfRatios["Average"], 12);
        Assert.Equal("log", (string?)json["layout"]!["xaxis"]!["type"]);
    }

    [Fact]
    public void CandidateBarsShowTheShareOfCorrectPromptsAndTheFullModel()
    {
        var rows = new[]
        {
            Row("docstring", 0, NodeSpecificResample, MetricKind.CorrectVsCandidatesPercent, 100),
            Row("docstring", 1, NodeSpecificResample, MetricKind.CorrectVsCandidatesPercent, 0),
            Row("docstring", 2, NodeSpecificResample, MetricKind.CorrectVsCandidatesPercent, 100),
        };
        var full = new[] { new BaselineRow("docstring", 0, MetricKind.CorrectVsCandidatesPercent, 100), new BaselineRow("docstring", 1, MetricKind.CorrectVsCandidatesPercent, 50) };
        var json = Json(PaperFigures.CandidateBars(new EvaluationResult(rows, full), reported: 58));
        Assert.Equal(200.0 / 3, (double)json["data"]![0]!["y"]![0]!, 9);
        Assert.Equal("66.7", (string?)json["data"]![0]!["text"]![0]);
        Assert.Equal(new[] { 75.0, 58.0 }, json["layout"]!["shapes"]!.AsArray().Select(s => (double)s!["y0"]!).ToArray());
    }
}
