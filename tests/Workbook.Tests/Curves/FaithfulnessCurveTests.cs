using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Curves;
using Workbook.Discovery;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Tests.Curves;

/// <summary>MIB's CPR and CMD by hand, the grids, and curves on the Tracr X-Proportion model against its ground truth.</summary>
public class FaithfulnessCurveTests
{
    [Fact]
    public void ACurveIdenticallyOneHasCprOneAndCmdZero()
    {
        var x = CurveGrid.MibFractions;
        var (cpr, cmd) = CurveArea.Areas(x, x.Select(_ => 1.0).ToArray());
        Assert.Equal(1.0, cpr, 12);
        Assert.Equal(0.0, cmd, 12);
    }

    [Fact]
    public void AStepCurveMatchesTheHandComputation()
    {
        // x = 0.1, 0.2, 0.5, 1; f = 0, 0, 1, 1. Trapezoids of f: 0.1·0 + 0.3·½ + 0.5·1 = 0.65; of |1 − f|: 0.1·1 + 0.3·½ + 0 = 0.25;
        // both divided by the range 0.9.
        var (cpr, cmd) = CurveArea.Areas(new[] { 0.1, 0.2, 0.5, 1 }, new[] { 0.0, 0, 1, 1 });
        Assert.Equal(0.65 / 0.9, cpr, 12);
        Assert.Equal(0.25 / 0.9, cmd, 12);
        // Overshooting counts against CMD as much as falling short: f = 2 everywhere is CPR 2, CMD 1.
        var (over, overDistance) = CurveArea.Areas(new[] { 0.5, 1.0 }, new[] { 2.0, 2.0 });
        Assert.Equal((2.0, 1.0), (over, overDistance));
        Assert.Throws<ArgumentException>(() => CurveArea.Areas(new[] { 0.5, 0.5 }, new[] { 1.0, 1 }));
        Assert.Throws<ArgumentException>(() => CurveArea.Areas(new[] { 0.5 }, new[] { 1.0 }));
        Assert.Throws<ArgumentException>(() => CurveArea.Areas(new[] { 0.5, 1 }, new[] { double.NaN, 1 }));
    }

    [Fact]
    public void GridsAreLogSpacedAndEndAtEveryEdge()
    {
        Assert.Equal(new[] { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000 }, CurveGrid.Mib(1000));
        Assert.Equal(new[] { 1, 10, 100, 1000 }, CurveGrid.LogSpaced(1000, 4));
        var small = CurveGrid.LogSpaced(23, 12);
        Assert.Equal(1, small[0]);
        Assert.Equal(23, small[^1]);
        Assert.True(small.Zip(small.Skip(1)).All(p => p.First < p.Second));
        Assert.Throws<ArgumentException>(() => CurveGrid.LogSpaced(23, 1));
        Assert.Throws<ArgumentException>(() => CurveGrid.LogSpaced(0, 5));
    }

    static readonly Lazy<(HookedTransformer Model, IReadOnlyList<TokenizedDataset> Parts)> XProportion = new(() =>
        (ModelLoader.Load(KnownTasks.TracrXProportion.PaperModel), KnownTasks.TracrXProportion.Tokenize(KnownTasks.TracrXProportion.GenerateForEvaluation(null, 0, 40), null)));

    /// <summary>Scores that rank the resample ground truth first (score 2) or last (score 0), every other edge 1.</summary>
    static EdgeScores Ranking(bool truthFirst)
    {
        var graph = ComputationGraph.Factorized(KnownConfigs.TracrXProportion, KnownTasks.TracrXProportion.SeparateQkv);
        var truth = OfficialCircuits.Get("tracr-xproportion-ours").Circuit.Resolve(graph, WordPositions.Empty, TokenPositions.All);
        var scores = graph.Edges.Select(e => truth.Contains(e) ? (truthFirst ? 2.0 : 0.0) : 1.0).ToArray();
        return new EdgeScores(graph, scores, new DiscoveryInfo
        {
            Model = "tracr-xproportion", Task = "tracr-xproportion", Algorithm = DiscoveryAlgorithm.Eap, Search = SearchSpace.Edge,
            Ablation = AblationValue.Resample, Target = DiscoveryTarget.Mse, Prompts = 0, Seed = 0,
        });
    }

    [Fact]
    public void TheGroundTruthFirstIsFaithfulFromItsSizeOnAndTheWholeModelIsOne()
    {
        var (model, parts) = XProportion.Value;
        var request = new CurveRequest
        {
            Model = model, Task = KnownTasks.TracrXProportion, Parts = parts, Scores = Ranking(truthFirst: true),
            Methodologies = new[] { new Methodology { Positions = TokenPositions.All } }, Grid = new[] { 1, 3, 5, 10, 23 },
        };
        var curve = Assert.Single(FaithfulnessCurves.Compute(request));
        Assert.Equal(MetricKind.Mse, curve.Metric);   // real-valued answers
        Assert.Equal(0.0, curve.FullModel, 12);       // the model's MSE to itself
        // The resample ground truth (5 edges) is what resample ablation needs: from 5 edges on the circuit is the model.
        foreach (var p in curve.Points.Where(p => p.Edges >= 5)) Assert.Equal(1.0, p.Faithfulness, 4);
        Assert.True(curve.Points[0].Faithfulness < 0.99, $"one edge of the truth alone: {curve.Points[0].Faithfulness}");
        var (cpr, cmd) = CurveArea.Areas(curve.Points.Select(p => p.Fraction).ToArray(), curve.Points.Select(p => p.Faithfulness).ToArray());
        Assert.Equal((cpr, cmd), (curve.Cpr, curve.Cmd));

        // The truth ranked last: every circuit below the whole graph misses part of it.
        var reversed = Assert.Single(FaithfulnessCurves.Compute(request with { Scores = Ranking(truthFirst: false) }));
        Assert.True(reversed.Points.Single(p => p.Edges == 10).Faithfulness < 0.99);
        Assert.Equal(1.0, reversed.Points[^1].Faithfulness, 9);
        Assert.True(reversed.Cpr < curve.Cpr && reversed.Cmd > curve.Cmd);
    }

    [Fact]
    public void CurvesRefuseWhatTheyCannotMeasure()
    {
        var (model, parts) = XProportion.Value;
        var request = new CurveRequest
        {
            Model = model, Task = KnownTasks.TracrXProportion, Parts = parts, Scores = Ranking(true),
            Methodologies = new[] { new Methodology { Ablate = AblatedSet.Circuit } }, Grid = new[] { 1, 23 },
        };
        Assert.Contains("ablates the circuit itself", Assert.Throws<ArgumentException>(() => FaithfulnessCurves.Compute(request)).Message);
        request = request with { Methodologies = new[] { new Methodology() }, Grid = new[] { 1, 24 } };
        Assert.Contains("outside 1..23", Assert.Throws<ArgumentException>(() => FaithfulnessCurves.Compute(request)).Message);
        request = request with { Grid = new[] { 5, 3 } };
        Assert.Contains("ascending", Assert.Throws<ArgumentException>(() => FaithfulnessCurves.Compute(request)).Message);
    }

    [Fact]
    public void NodeCircuitsKeepEveryNonHeadNodeAndTheSourceHeads()
    {
        var config = KnownConfigs.TracrReverse;
        var factorized = ComputationGraph.Factorized(config);
        var residual = ComputationGraph.Residual(config);
        var head = factorized.Sources.First(s => s.Kind == NodeKind.Head);
        var edge = factorized.EdgesFrom(head).First();
        var nodes = FaithfulnessCurves.NodeCircuit(Circuit.From(factorized, new[] { new CircuitEdge(edge, null) }), residual);
        var keptHeads = nodes.DistinctEdges().Where(e => e.Source.Kind == NodeKind.Head).Select(e => e.Source.Name).Distinct().ToList();
        Assert.Equal(new[] { head.Name }, keptHeads);
        Assert.Equal(residual.Edges.Count(e => e.Source.Kind != NodeKind.Head) + 1, nodes.Count);
    }
}
