using Workbook.Checkpoints;
using Workbook.Curves;
using Workbook.Evaluation;
using Workbook.Figures;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Tests.Curves;

/// <summary>The robustness card of the Tracr X-Proportion resample ground truth, and its page drawn in headless Chromium.</summary>
public class RobustnessCardTests
{
    static readonly Lazy<RobustnessCard> Card = new(() =>
    {
        var task = KnownTasks.TracrXProportion;
        using var model = ModelLoader.Load(task.PaperModel);
        return RobustnessCards.Compute(new CardRequest
        {
            Model = model, Task = task, Parts = task.Tokenize(task.GenerateForEvaluation(null, 0, 40), null),
            Circuit = CircuitChoice.Parse("tracr-xproportion-ours"), Points = 6,
        });
    });

    [Fact]
    public void TheCardOfTheGroundTruthSaysWhatItIs()
    {
        var card = Card.Value;
        Assert.Equal((3, 23), (card.CircuitEdges, card.GraphEdges));   // the resample ground truth: 3 of the model's 23 edges (TracrDiscoveryTests)
        Assert.Equal(4, card.Curves.Count);                            // node/edge × resample/mean
        // The resample ground truth: at its own size, ranked first, under edge resample ablation the circuit is the model.
        var edgeResample = card.Curves.Single(c => c.Methodology.Component == Component.Edge && c.Methodology.Value == AblationValue.Resample);
        Assert.Equal(1.0, edgeResample.Points.Single(p => p.Edges == 3).Faithfulness, 4);
        Assert.Equal(Component.Edge, card.Reference.Component);
        Assert.Equal(AblationValue.Resample, card.Reference.Value);
        Assert.InRange(card.WorstPrompts.Count, 1, RobustnessCard.WorstCount);
        Assert.True(card.WorstPrompts.Zip(card.WorstPrompts.Skip(1)).All(p => p.First.Deviation >= p.Second.Deviation));
        var md = card.ToMarkdown();
        Assert.Contains("**Size:** 3 of 23 edges", md);
        Assert.Contains("CPR", md);
        Assert.Contains(card.Verdict, md);
        Assert.Contains("Across circuit sizes (MIB)", card.Verdict);
    }

    [SkippableFact]
    public void TheCardPageDrawsItsFiguresInHeadlessChromium()
    {
        Skip.If(Chromium.Find() is null, "No Chromium on this machine (apt-get install chromium); the rendering check needs it.");
        string dir = Path.Combine(Path.GetTempPath(), $"workbook-card-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string page = Path.Combine(dir, "card.html");
            File.WriteAllText(page, Card.Value.ToHtml());
            string dom = Chromium.DumpDom(page);
            Assert.True(dom.Split("class=\"main-svg\"").Length - 1 >= 2, "both figures (box plot and curves) should be drawn");
            Assert.Contains("trace boxes", dom);
            Assert.Contains("trace scatter", dom);
            Assert.Contains("faithfulness across circuit sizes", dom);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
