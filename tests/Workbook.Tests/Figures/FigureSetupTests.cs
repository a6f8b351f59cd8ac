using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Graph;

namespace Workbook.Tests.Figures;

/// <summary>The built-in stand-ins of the figure notebooks, and the induced toy IOI edge circuit.</summary>
public class FigureSetupTests
{
    [Fact]
    public void ToyIoiEdgesInducedIsTheCircuitItsNodesInduceCountedByHand()
    {
        var circuit = OfficialCircuits.Get("toy-ioi-edges-induced").Circuit;
        // Kept: Resid Start, MLP 0-2, the output and heads A0.0, A1.0, A1.3. Edges into A0.0.Q/K/V: 3; MLP 0: 2;
        // A1.0 and A1.3, Q/K/V each from Resid Start, A0.0, MLP 0: 18; MLP 1: 5; MLP 2: 6; Resid End: 7. Total 41.
        Assert.Equal(41, circuit.Edges.Count);
        Assert.Equal(GraphView.Factorized, circuit.View);
        string? At(string src, string dest) => circuit.Edges.Single(e => e.Source == src && e.Destination == dest).Position;
        Assert.Equal("end", At("A0.0", "A1.0.K"));       // out of a kept head: at the head's position
        Assert.Equal("end", At("Resid Start", "A1.3.Q")); // into a kept head's query: at its position
        Assert.Null(At("Resid Start", "A1.0.K"));          // keys and values: everywhere
        Assert.Null(At("MLP 0", "MLP 1"));
        Assert.Equal("end", At("A1.3", "Resid End"));
        Assert.DoesNotContain(circuit.Edges, e => e.Source == "A0.1" || e.Destination.StartsWith("A2."));
        var family = CircuitChoice.Parse("toy-ioi");
        Assert.Equal(new[] { Workbook.Patching.Component.Node, Workbook.Patching.Component.Edge }, family.Components);
    }

    [Fact]
    public void WithoutThePapersModelTheSetupFallsBackAndSaysHowToGetIt()
    {
        bool before = FigureSetup.EmbeddedOnly;
        FigureSetup.EmbeddedOnly = true;
        try
        {
            using (var ioi = FigureSetup.For("ioi", FallbackSetup.ToyIoi("the toy model"), paperPrompts: 100, fallbackPrompts: 2, fallbackPartsPerOrder: 2))
            {
                Assert.False(ioi.IsPaperModel);
                Assert.Equal("toy-ioi", ioi.Circuit.Name);
                Assert.Equal(new[] { "ABBA-0", "ABBA-1", "BABA-0", "BABA-1" }, ioi.Parts.Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal).ToArray());
                Assert.All(ioi.Parts, p => Assert.Equal(2, p.Count));
            }
            using (var sports = FigureSetup.For("sports-players", FallbackSetup.ToySports(), paperPrompts: 200, fallbackPrompts: 20))
            {
                Assert.Equal(("toy-sports", "toy-sports", "toy-sports"), (sports.ModelName, sports.Task.Name, sports.Circuit.Name));
                Assert.Contains("workbook models pull pythia-2.8b-deduped", sports.Note);
            }
            using var setup = FigureSetup.For("docstring", FallbackSetup.ToyDocstring("a toy Docstring model"), paperPrompts: 50, fallbackPrompts: 2);
            Assert.False(setup.IsPaperModel);
            Assert.Equal("docstring", setup.Task.Name);
            Assert.Equal("toy-docstring", setup.Circuit.Name);
            Assert.Equal(new[] { Workbook.Patching.Component.Node, Workbook.Patching.Component.Edge }, setup.Circuit.Components);
            Assert.Equal(2, setup.Parts.Single().Count);
            Assert.Contains("workbook models pull attn-only-4l", setup.Note);
            Assert.Contains("a toy Docstring model", setup.Note);
            Assert.Contains("NOTE:", setup.Describe());
            Assert.All(setup.Describe().Split('\n'), line => Assert.True(line.Length <= 120, line));
            Assert.Contains("`workbook models pull attn-only-4l`", setup.Describe()); // commands are never broken across lines
        }
        finally
        {
            FigureSetup.EmbeddedOnly = before;
        }
    }
}

/// <summary>Results and figures name the model by its id or folder and say when its weights are random.</summary>
public class ModelLabelTests
{
    [Fact]
    public void ASnapshotFolderOfTheHubCacheIsNamedByItsRepositoryNotItsHash()
    {
        string root = Directory.CreateTempSubdirectory("wb-names-").FullName;
        try
        {
            string snapshot = Path.Combine(root, "models--EleutherAI--pythia-2.8b-deduped", "snapshots", "0123456789abcdef0123456789abcdef01234567");
            Directory.CreateDirectory(snapshot);
            Assert.Equal("EleutherAI/pythia-2.8b-deduped", Workbook.Checkpoints.ModelSource.FolderDisplayName(snapshot));
            Assert.Equal("EleutherAI/pythia-2.8b-deduped", Workbook.Checkpoints.ModelSource.FolderDisplayName(snapshot + "/"));
            Assert.Equal("my-model", Workbook.Checkpoints.ModelSource.FolderDisplayName(Path.Combine(root, "my-model")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void FiguresOfARandomStandInSaySoInTheirTitles()
    {
        var row = new EvaluationRow("ioi", "ABBA-0", 0, new Workbook.Patching.Methodology(), Workbook.Metrics.MetricKind.LogitDiffRecovered, 50);
        var random = new EvaluationResult(new[] { row }, Array.Empty<BaselineRow>()) { Model = new ModelLabel("gpt2", RandomWeights: true) };
        var real = random with { Model = new ModelLabel("gpt2", RandomWeights: false) };
        string Title(EvaluationResult r) => Workbook.Figures.PaperFigures.NodesEdgesTokensValues(r).Layout.Title!.Text;
        Assert.EndsWith("(gpt2: random weights, not the real model)", Title(random));
        Assert.DoesNotContain("random", Title(real));
        Assert.DoesNotContain("random", Title(random with { Model = null }));
    }
}
