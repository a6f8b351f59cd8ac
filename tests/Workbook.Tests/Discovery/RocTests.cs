using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Tests.Discovery;

/// <summary>Pessimistic ROC curves on hand-computed examples, and the node-to-edge score mapping of spec A.5.</summary>
public class RocTests
{
    static double[] Fpr(RocCurve c) => c.Points.Select(p => p.FalsePositiveRate).ToArray();
    static double[] Tpr(RocCurve c) => c.Points.Select(p => p.TruePositiveRate).ToArray();

    [Fact]
    public void PerfectRankingHasAreaOneAndReversedZero()
    {
        var perfect = Roc.Compute(new[] { 4.0, 3, 2, 1 }, new[] { true, true, false, false });
        Assert.Equal(new[] { 0, 0, 0, 0.5, 1 }, Fpr(perfect));
        Assert.Equal(new[] { 0, 0.5, 1, 1, 1 }, Tpr(perfect));
        Assert.Equal(1.0, perfect.Area);
        Assert.True(perfect.RecoversTruthExactly);

        var reversed = Roc.Compute(new[] { 1.0, 2, 3, 4 }, new[] { true, true, false, false });
        Assert.Equal(0.0, reversed.Area);
        Assert.Equal(0.0, reversed.TruePositiveRateAtZeroFalsePositives);
    }

    [Fact]
    public void TiesCountFalsePositivesFirst()
    {
        // Scores 3 (true), 2 (false), 2 (true), 1 (false): the tie enters at once, and the step goes right before up.
        // Points (0,0) (0,.5) (.5,1) (1,1); area = 0.5·0.5 + 0.5·1 = 0.75 (0.875 if the true edge of the tie counted first).
        var curve = Roc.Compute(new[] { 3.0, 2, 2, 1 }, new[] { true, false, true, false });
        Assert.Equal(new[] { 0.0, 0, 0.5, 1 }, Fpr(curve));
        Assert.Equal(new[] { 0.0, 0.5, 1, 1 }, Tpr(curve));
        Assert.Equal(new[] { 0, 1, 3, 4 }, curve.Points.Select(p => p.Selected).ToArray());
        Assert.Equal(0.75, curve.Area, 12);
        Assert.Equal(0.5, curve.TruePositiveRateAtZeroFalsePositives);

        // Everything tied: one diagonal jump, drawn right-then-up, has no area.
        var tied = Roc.Compute(new[] { 1.0, 1, 1 }, new[] { true, false, false });
        Assert.Equal(0.0, tied.Area);
        Assert.False(tied.RecoversTruthExactly);
    }

    [Fact]
    public void InfiniteScoresEnterFirstAndTheCurveEndsAtOneOne()
    {
        // +∞ (ACDC's never-removed edges) are selected at k = 0 (threshold +∞), spec A.5.
        var curve = Roc.Compute(new[] { double.PositiveInfinity, double.PositiveInfinity, 1e-25, 1e-25, 3e-2 },
            new[] { true, true, false, false, false });
        Assert.Equal(new[] { 0, 0, 1.0 / 3, 1 }, Fpr(curve));
        Assert.Equal(new[] { 0.0, 1, 1, 1 }, Tpr(curve));
        Assert.True(curve.RecoversTruthExactly);
        Assert.Equal(1.0, curve.Area);
    }

    [Fact]
    public void ScoresByNameUseAbsoluteValuesAndCheckTheTruth()
    {
        var scores = new List<KeyValuePair<string, double>> { new("a->b", -5), new("c->d", 2), new("e->f", 0) };
        var curve = Roc.Compute(scores, new[] { "a->b" });
        Assert.True(curve.RecoversTruthExactly);
        var missing = Assert.Throws<ArgumentException>(() => Roc.Compute(scores, new[] { "a->c" }));
        Assert.Contains("a->c", missing.Message);
        Assert.Throws<ArgumentException>(() => Roc.Compute(new[] { 1.0, 2 }, new[] { false, false }));
        Assert.Throws<ArgumentException>(() => Roc.Compute(new[] { 1.0, 2 }, new[] { true, true }));
        Assert.Throws<ArgumentException>(() => Roc.Compute(new[] { double.NaN, 2 }, new[] { true, false }));
    }

    [Fact]
    public void EdgeScoresRankByMagnitudeAndTopIncludesTies()
    {
        var graph = ComputationGraph.Factorized(KnownConfigs.TracrXProportion);
        var values = new double[graph.EdgeCount];
        values[graph.Edge("A1.0", "Resid End").Index] = -3;
        values[graph.Edge("MLP 0", "A1.0.V").Index] = 2;
        values[graph.Edge("Resid Start", "MLP 0").Index] = 2;
        var scores = new EdgeScores(graph, values, Info());
        Assert.Equal("A1.0->Resid End", scores.Ranked()[0].Name);
        Assert.Equal(3, scores.Top(2).Count);                 // the tie at the 2nd place comes along
        Assert.Equal(graph.EdgeCount, scores.Top(4).Count);   // the 4th largest is 0: every edge reaches it
        var truth = OfficialCircuits.Get("tracr-xproportion-ours").Circuit.Resolve(graph, WordPositions.Empty, TokenPositions.All);
        Assert.True(Roc.Compute(scores, truth).RecoversTruthExactly);
        values[0] = double.NaN;
        Assert.Throws<ArgumentException>(() => new EdgeScores(graph, values, Info()));
    }

    static DiscoveryInfo Info() => new()
    {
        Model = "m", Task = "t", Algorithm = DiscoveryAlgorithm.Eap, Search = SearchSpace.Edge, Ablation = AblationValue.Resample,
        Target = DiscoveryTarget.Mse, Prompts = 1, Seed = 0,
    };

    [Fact]
    public void NodeScoresMapOntoEdgesByTheMinimumOfTheirEnds()
    {
        var residual = ComputationGraph.Residual(KnownConfigs.TracrXProportion);
        var factorized = ComputationGraph.Factorized(KnownConfigs.TracrXProportion);
        // Give each residual edge a distinct score; a node's score is its out-edge's.
        var residualScores = residual.Edges.Select(e => (double)(e.Index + 1) * (e.Index % 2 == 0 ? 1 : -1)).ToArray();
        var nodes = NodeToEdgeScores.NodeScores(residual, residualScores).ToDictionary(n => n.Node, n => n.Score);
        Assert.Equal(residual.Sources.Count, nodes.Count);
        Assert.Equal(residualScores[residual.Edge("A1.0", "Resid Mid 1").Index], nodes["A1.0"]);
        var edges = NodeToEdgeScores.EdgeScores(NodeToEdgeScores.NodeScores(residual, residualScores), factorized);
        Assert.Equal(Math.Min(nodes["Resid Start"], nodes["A1.0"]), edges[factorized.Edge("Resid Start", "A1.0.Q").Index]);
        Assert.Equal(Math.Min(nodes["A0.0"], nodes["MLP 1"]), edges[factorized.Edge("A0.0", "MLP 1").Index]);
        Assert.Equal(nodes["MLP 1"], edges[factorized.Edge("MLP 1", "Resid End").Index]);   // Resid End contributes nothing
        Assert.Equal(nodes["A1.0"], edges[factorized.Edge("A1.0", "Resid End").Index]);
    }
}
