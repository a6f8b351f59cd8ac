using System.Text.Json.Nodes;
using Workbook.Discovery;
using Workbook.Figures;

namespace Workbook.Tests.Figures;

/// <summary>Figures 5 and 12 from hand-built ROC data: panel order and headings as in the paper, one line per algorithm, the curves' own points.</summary>
public class RocFigureTests
{
    static readonly string[] Tasks = { "tracr-reverse", "tracr-xproportion" };

    // Curves whose shape encodes where they came from, so a panel holding the wrong curve is visible: the ground-truth
    // edge ranks first ("ours", AUC 1) or last ("theirs", AUC 0) among four edges.
    static TracrRocData HandBuilt()
    {
        var curves = new List<RocPanel>();
        foreach (var task in Tasks)
            foreach (var search in new[] { SearchSpace.Edge, SearchSpace.Node })
                foreach (var algorithm in new[] { DiscoveryAlgorithm.Acdc, DiscoveryAlgorithm.Eap })
                    foreach (var truth in new[] { GroundTruth.Ours, GroundTruth.Theirs })
                    {
                        var importance = new[] { 4.0, 3.0, 2.0, 1.0 };
                        var flags = truth == GroundTruth.Ours ? new[] { true, false, false, false } : new[] { false, false, false, true };
                        curves.Add(new RocPanel(task, algorithm, search, truth, $"{task}-{truth.ToString().ToLowerInvariant()}", Roc.Compute(importance, flags)));
                    }
        return new TracrRocData(curves, Array.Empty<EdgeScores>());
    }

    static string[] Headings(JsonNode json) =>
        json["layout"]!["annotations"]!.AsArray().Select(a => (string?)a!["text"]).Where(t => t!.StartsWith("<b>")).Select(t => t!)
            .ToArray();

    static JsonArray Curves(JsonNode json) => new(json["data"]!.AsArray().Where(d => (string?)d!["name"] != "chance").Select(d => d!.DeepClone()).ToArray());

    [Fact]
    public void Figure5HasThePapersFourPanelsOfEdgeSearch()
    {
        var json = JsonNode.Parse(PaperFigures.Figure5(HandBuilt()).ToJson())!;
        Assert.Equal(new[] { "<b>Reverse (Theirs)</b>", "<b>X-Proportion (Theirs)</b>", "<b>Reverse (Ours)</b>", "<b>X-Proportion (Ours)</b>" }, Headings(json));
        var curves = Curves(json);
        Assert.Equal(8, curves.Count); // 4 panels × 2 algorithms
        // "theirs" panels come first: every edge before the ground truth, AUC 0; "ours" panels: AUC 1.
        Assert.Equal(new[] { "x", "x", "x2", "x2", "x3", "x3", "x4", "x4" }, curves.Select(c => (string?)c!["xaxis"]).ToArray());
        Assert.All(curves.Take(4), c => Assert.EndsWith("(AUC 0.00)", (string?)c!["name"]));
        Assert.All(curves.Skip(4), c => Assert.EndsWith("(AUC 1.00)", (string?)c!["name"]));
        // Ours, ground truth first of 4 edges: (0,0) → (0,1) → (1/3,1) → (2/3,1) → (1,1).
        Assert.Equal(new[] { 0.0, 0.0, 1 / 3.0, 2 / 3.0, 1.0 }, curves[4]!["x"]!.AsArray().Select(n => (double)n!).ToArray());
        Assert.Equal(new[] { 0.0, 1.0, 1.0, 1.0, 1.0 }, curves[4]!["y"]!.AsArray().Select(n => (double)n!).ToArray());
        Assert.StartsWith("ACDC", (string?)curves[0]!["name"]);
        Assert.StartsWith("Edge attribution patching", (string?)curves[1]!["name"]);
    }

    [Fact]
    public void Figure12ComparesNodeAndEdgeSearchAgainstOurs()
    {
        var json = JsonNode.Parse(PaperFigures.Figure12(HandBuilt()).ToJson())!;
        Assert.Equal(new[] { "<b>Reverse (Ours), node search</b>", "<b>X-Proportion (Ours), node search</b>", "<b>Reverse (Ours), edge search</b>", "<b>X-Proportion (Ours), edge search</b>" },
            Headings(json));
        Assert.All(Curves(json), c => Assert.EndsWith("(AUC 1.00)", (string?)c!["name"]));
    }

    [Fact]
    public void MissingCurvesAreAClearError()
    {
        var edgeOnly = HandBuilt() with { Curves = HandBuilt().Curves.Where(c => c.Truth == GroundTruth.Theirs).ToList() };
        var e = Assert.Throws<ArgumentException>(() => PaperFigures.Figure12(edgeOnly));
        Assert.Contains("No ROC curves", e.Message);
    }
}
