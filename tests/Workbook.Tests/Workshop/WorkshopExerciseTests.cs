using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Workshop;
using static TorchSharp.torch;

namespace Workbook.Tests.Workshop;

/// <summary>
/// The checks of workshop notebooks 4–6: every hint is reached by the mistake it names. Expected values are hand
/// computations (written out below) or a second implementation (the library's KL metric, its ROC curve, a fresh
/// evaluation), never the check's own output.
/// </summary>
public class WorkshopExerciseTests
{
    // Ratios 50, 300, −20, 200 %: mean of ratios 132.5; ratio of means 100 · (8/4) / (12/4) = 66.67;
    // per part: A 100 · 2.5/2.5 = 100, B 100 · 1.5/3.5 = 42.86, average 71.43.
    static readonly PromptLogitDiffs[] Prompts =
    {
        new("A", 0, 2, 4), new("A", 1, 3, 1), new("B", 0, -1, 5), new("B", 1, 4, 2),
    };

    [Fact]
    public void BothAggregationsAndTheRatioOfMeansHints()
    {
        Assert.Equal(132.5, AggregationExercises.MeanOfRatios(Prompts), 10);
        Assert.Equal(200.0 / 3, AggregationExercises.RatioOfMeans(Prompts), 10);
        Assert.True(AggregationExercises.RatioOfMeansByHand(Prompts, 66.667).Passed);
        Assert.Equal(CheckStatus.NotDone, AggregationExercises.RatioOfMeansByHand(Prompts, null).Status);
        Assert.Contains("mean of the per-prompt ratios", AggregationExercises.RatioOfMeansByHand(Prompts, 132.5).Message);
        Assert.Contains("fraction", AggregationExercises.RatioOfMeansByHand(Prompts, 0.66667).Message);
        Assert.Contains("upside down", AggregationExercises.RatioOfMeansByHand(Prompts, 150).Message);
        Assert.Contains("mean LD_circuit alone", AggregationExercises.RatioOfMeansByHand(Prompts, 200).Message);
        Assert.Contains("ratio of means of each part", AggregationExercises.RatioOfMeansByHand(Prompts, 71.4286).Message);
        Assert.Contains("was expected", AggregationExercises.RatioOfMeansByHand(Prompts, 12).Message);
        Assert.Contains("finite", AggregationExercises.RatioOfMeansByHand(Prompts, double.PositiveInfinity).Message);
    }

    [Fact]
    public void TheDominantPromptIsTheRatioFurthestFromTheMeanAndEachWrongPickIsNamed()
    {
        // Ratios 50, 60, −300, 200 (mean 2.5): −300 is furthest; 200 is the largest ratio, prompt 0 has the smallest
        // model logit difference, prompt 1 the largest circuit logit difference.
        var prompts = new PromptLogitDiffs[] { new("A", 0, 0.5, 1), new("A", 1, 12, 20), new("A", 2, -6, 2), new("A", 3, 8, 4) };
        Assert.Equal(2, AggregationExercises.DominantPrompt(prompts));
        Assert.Equal(1, AggregationExercises.DominantPrompt(Prompts));
        var pass = AggregationExercises.DominantPromptByHand(prompts, 2);
        Assert.True(pass.Passed);
        Assert.Contains($"{Check.Format(302.5 / 3)} points", pass.Message); // |2.5 − (−300)| / (n − 1)
        Assert.Contains("largest ratio", AggregationExercises.DominantPromptByHand(prompts, 3).Message);
        Assert.Contains("smallest logit difference", AggregationExercises.DominantPromptByHand(prompts, 0).Message);
        Assert.Contains("circuit's largest logit difference", AggregationExercises.DominantPromptByHand(prompts, 1).Message);
        Assert.Contains("not an index", AggregationExercises.DominantPromptByHand(prompts, 4).Message);
        Assert.Equal(CheckStatus.NotDone, AggregationExercises.DominantPromptByHand(prompts, null).Status);
    }

    [Fact]
    public void KlFromTwoLogitVectorsAndItsMistakes()
    {
        // P = softmax(0, 1, 3), Q = softmax(1, 1, 1) = uniform. By hand (Python, math module):
        // KL(P‖Q) = 0.574345672, KL(Q‖P) = 0.737900398, Σ P (x − y) = 1.645579403.
        using var model = tensor(new float[] { 0, 1, 3 });
        using var circuit = tensor(new float[] { 1, 1, 1 });
        Assert.Equal(0.574345672, AggregationExercises.KlDivergence(new double[] { 0, 1, 3 }, new double[] { 1, 1, 1 }), 8);
        Assert.True(AggregationExercises.KlByHand(model, circuit, 0.574346).Passed);
        Assert.Contains("KL(circuit ‖ model)", AggregationExercises.KlByHand(model, circuit, 0.737900).Message);
        Assert.Contains("raw logits", AggregationExercises.KlByHand(model, circuit, 1.645579).Message);
        Assert.Contains("averaged over the vocabulary", AggregationExercises.KlByHand(model, circuit, 0.574346 / 3).Message);
        Assert.Contains("bits", AggregationExercises.KlByHand(model, circuit, 0.574346 / Math.Log(2)).Message);
        Assert.Contains("sign is flipped", AggregationExercises.KlByHand(model, circuit, -0.574346).Message);
        Assert.Equal(CheckStatus.NotDone, AggregationExercises.KlByHand(model, circuit, null).Status);
        Assert.Throws<ArgumentException>(() => AggregationExercises.KlByHand(model.unsqueeze(0), circuit.unsqueeze(0), 0.5));
    }

    [Fact]
    public void TheKlCheckAgreesWithTheLibrarysKlMetricOnTheToyModel()
    {
        using var lab = IoiLab.Load();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var model = lab.Model.Forward(lab.Clean)[0, lab.End];
        var circuit = lab.Model.Forward(lab.Clean, HooksExercises.ZeroHead(0, 0, lastOnly: false))[0, lab.End];
        // MetricKind.Kl on [1 prompt, 1 position, V] in float64: a second implementation (tensors, not doubles).
        double metric = MetricKind.Kl.Compute(new MetricInputs(circuit.to_type(ScalarType.Float64).reshape(1, 1, -1),
            model.to_type(ScalarType.Float64).reshape(1, 1, -1), new MetricTargets(null, null))).item<double>();
        Assert.True(metric > 0.01, $"KL {metric}: switching off A0.0 should change the distribution.");
        Assert.True(AggregationExercises.KlByHand(model, circuit, metric).Passed);
    }

    /// <summary>
    /// Hand-made scores on the X-Proportion graph (23 edges; "ours" 3 and "theirs" 5 edges, spec A.5). Importances:
    /// the three "ours" edges 3, 2 (both negative scores) and 1.5; Resid Start→A1.0.Q ("theirs" only) and
    /// A0.0→Resid End (neither) tie at 0.5; Resid Start→Resid End 0.2; the other 17 edges 0.
    /// </summary>
    static EdgeScores HandScores()
    {
        var graph = ComputationGraph.Factorized(KnownConfigs.TracrXProportion);
        var values = new double[graph.EdgeCount];
        void Set(string name, double v) => values[graph.Edges.Single(e => e.Name == name).Index] = v;
        Set("Resid Start->MLP 0", -3);
        Set("MLP 0->A1.0.V", -2);
        Set("A1.0->Resid End", 1.5);
        Set("Resid Start->A1.0.Q", 0.5);
        Set("A0.0->Resid End", 0.5);
        Set("Resid Start->Resid End", 0.2);
        return new EdgeScores(graph, values, new DiscoveryInfo
        {
            Model = "tracr-xproportion", Task = "tracr-xproportion", Algorithm = DiscoveryAlgorithm.Eap, Search = SearchSpace.Edge,
            Ablation = AblationValue.Resample, Target = DiscoveryTarget.Mse, Prompts = 1, Seed = 0,
        });
    }

    [Fact]
    public void GroundTruthsHaveThePapersSizes()
    {
        var scores = HandScores();
        Assert.Equal(23, scores.Graph.EdgeCount);
        Assert.Equal(3, DiscoveryExercises.GroundTruthOf(scores, GroundTruth.Ours).DistinctEdges().Count);
        Assert.Equal(5, DiscoveryExercises.GroundTruthOf(scores, GroundTruth.Theirs).DistinctEdges().Count);
    }

    [Fact]
    public void RankingEdgesByImportanceAndItsHints()
    {
        var scores = HandScores();
        string[] top3 = { "Resid Start->MLP 0", "MLP 0->A1.0.V", "A1.0->Resid End" };
        Assert.True(DiscoveryExercises.TopEdges(scores, 3, top3).Passed);
        Assert.True(DiscoveryExercises.TopEdges(scores, 3, top3.Reverse().ToArray()).Passed);
        // The fourth place is a tie: either edge passes.
        Assert.True(DiscoveryExercises.TopEdges(scores, 4, top3.Append("Resid Start->A1.0.Q").ToArray()).Passed);
        Assert.True(DiscoveryExercises.TopEdges(scores, 4, top3.Append("A0.0->Resid End").ToArray()).Passed);
        Assert.Contains("signed score", DiscoveryExercises.TopEdges(scores, 3, new[] { "A1.0->Resid End", "Resid Start->A1.0.Q", "A0.0->Resid End" }).Message);
        Assert.Contains("least important", DiscoveryExercises.TopEdges(scores, 3, new[] { "Resid Start->A0.0.Q", "Resid Start->A0.0.K", "MLP 1->Resid End" }).Message);
        var generic = DiscoveryExercises.TopEdges(scores, 3, new[] { "Resid Start->MLP 0", "MLP 0->A1.0.V", "Resid Start->Resid End" });
        Assert.Contains("1 of them rank lower, e.g. Resid Start->Resid End", generic.Message);
        Assert.Contains("has 2 edges", DiscoveryExercises.TopEdges(scores, 3, top3.Take(2).ToArray()).Message);
        Assert.Contains("twice", DiscoveryExercises.TopEdges(scores, 3, new[] { top3[0], top3[0], top3[1] }).Message);
        Assert.Contains("not an edge of the graph", DiscoveryExercises.TopEdges(scores, 3, new[] { "MLP 0 -> A1.0.V", top3[0], top3[2] }).Message);
        Assert.Equal(CheckStatus.NotDone, DiscoveryExercises.TopEdges(scores, 3, null).Status);
    }

    [Fact]
    public void ARocPointByHandAndItsHints()
    {
        var scores = HandScores();
        var ours = DiscoveryExercises.GroundTruthOf(scores, GroundTruth.Ours);
        var theirs = DiscoveryExercises.GroundTruthOf(scores, GroundTruth.Theirs);
        // Importance ≥ 0.2 selects 6 edges: 4 of "theirs" 5 (TPR 0.8) and 2 of the 18 others (FPR 1/9).
        var right = new RocPoint(2.0 / 18, 0.8, 6);
        Assert.Equal(right, DiscoveryExercises.PointAt(scores, theirs, 0.2));
        Assert.Contains(right, Roc.Compute(scores, theirs).Points); // the library's curve passes through it
        CheckResult Try(RocPoint? p) => DiscoveryExercises.PointByHand(scores, theirs, ours, 0.2, p);
        Assert.True(Try(right).Passed);
        Assert.Contains("swapped", Try(new RocPoint(0.8, 2.0 / 18, 6)).Message);
        Assert.Contains("not by all 23 edges", Try(new RocPoint(2.0 / 23, 0.8, 6)).Message);
        Assert.Contains("precision", Try(new RocPoint(2.0 / 18, 4.0 / 6, 6)).Message);
        Assert.Contains("strictly above", Try(new RocPoint(1.0 / 18, 0.8, 5)).Message);
        Assert.Contains("other ground truth", Try(new RocPoint(3.0 / 20, 1.0, 6)).Message); // ours: 3 of 3, 3 of 20 others
        Assert.Contains("7 edges were selected, not 6", Try(new RocPoint(2.0 / 18, 0.8, 7)).Message);
        Assert.Contains("Count the selected edges", Try(new RocPoint(0.5, 0.5, 6)).Message);
        Assert.Equal(CheckStatus.NotDone, Try(null).Status);
    }

    static readonly SymbolicCircuit FileCircuit = new("file", "a test circuit", GraphView.Factorized, true, new SymbolicEdge[]
    {
        new("Resid Start", "A0.0.V", "S2"), new("A0.0", "MLP 0", "end"), new("A0.0", "MLP 1", "end"),
        new("A0.0", "Resid End", "end"), new("MLP 0", "Resid End", "end"),
    });

    static SymbolicCircuit With(params SymbolicEdge[] edges) => new("mine", "", GraphView.Factorized, true, edges);

    [Fact]
    public void DroppingOneEdgeAndTheMistakesOfEditingTheFile()
    {
        var e = FileCircuit.Edges;
        CheckResult Try(SymbolicCircuit? c) => CircuitFileExercises.DroppedEdge(FileCircuit, "A0.0", "Resid End", c);
        Assert.True(Try(With(e[0], e[1], e[2], e[4])).Passed);
        Assert.Equal(CheckStatus.NotDone, Try(null).Status);
        Assert.Contains("is the original circuit", Try(With(e.ToArray())).Message);
        Assert.Contains("removed every edge out of A0.0", Try(With(e[0], e[4])).Message);
        Assert.Contains("you removed MLP 0->Resid End instead", Try(With(e[0], e[1], e[2], e[3])).Message);
        Assert.Contains("MLP 0->Resid End changed position", Try(With(e[0], e[1], e[2], new SymbolicEdge("MLP 0", "Resid End", null))).Message);
        Assert.Contains("Also missing: A0.0->MLP 1 at end", Try(With(e[0], e[1], e[4])).Message);
        Assert.Contains("Not in the file: MLP 1->Resid End", Try(With(e[0], e[1], e[2], e[4], new SymbolicEdge("MLP 1", "Resid End", "end"))).Message);
        Assert.Contains("keep \"component\"", Try(new SymbolicCircuit("n", "", GraphView.Residual, false, new[] { e[0] })).Message);
        Assert.Throws<ArgumentException>(() => CircuitFileExercises.WithoutEdge(FileCircuit, "MLP 1", "Resid End"));
    }

    static RobustnessReport ReportWith(params FactorEffect[] factors) => new()
    {
        Task = "ioi", Circuit = "c", Model = "m", Metric = MetricKind.LogitDiffRecovered, Prompts = 1, FullModelMedian = 100,
        Faithfulness = Array.Empty<ReportEntry>(), CircuitAblated = Array.Empty<ReportEntry>(), Rows = Array.Empty<EvaluationRow>(),
        Sensitivity = new Sensitivity
        {
            MinMedian = 0, MaxMedian = 1, MinMethodology = "", MaxMethodology = "", Factors = factors, Statement = "",
            MostInfluentialFactor = factors.Where(f => f.Factor != "ablated set").MaxBy(f => f.MeanShift)?.Factor,
        },
    };

    [Fact]
    public void ReadingTheSensitivityFactors()
    {
        var report = ReportWith(new("component", 2, 5, 40, ""), new("ablation value", 4, 20, 25, ""), new("token positions", 6, 3, 4, ""), new("ablated set", 12, 60, 80, ""));
        Assert.True(CircuitFileExercises.MostInfluentialFactor(report, " Ablation Value").Passed);
        Assert.Contains("largest single switch", CircuitFileExercises.MostInfluentialFactor(report, "component").Message);
        Assert.Contains("left out", CircuitFileExercises.MostInfluentialFactor(report, "ablated set").Message);
        Assert.Contains("another factor moves it more", CircuitFileExercises.MostInfluentialFactor(report, "token positions").Message);
        Assert.Contains("not one of the report's factors", CircuitFileExercises.MostInfluentialFactor(report, "colour").Message);
        Assert.Equal(CheckStatus.NotDone, CircuitFileExercises.MostInfluentialFactor(report, null).Status);
    }

    [Fact]
    public void TheMedianChangeOfDroppingAnEdgeIsMeasuredOnTheReportsPrompts()
    {
        using var setup = FigureSetup.Custom("toy-ioi", "ioi", "toy-ioi-edges", prompts: 3).WithFirstParts(1);
        var methodology = new Methodology { Component = Component.Edge, Value = AblationValue.Resample };
        var report = PaperExperiments.Robustness(setup, grid: new ReportGrid
        {
            Values = new[] { AblationValue.Resample }, Positions = new[] { TokenPositions.Specific }, Sets = new[] { AblatedSet.Complement },
        });
        var circuit = setup.Circuit.For(Component.Edge);
        // Both circuits evaluated afresh here (not read from the report), the smaller one written out edge by edge.
        var smaller = new SymbolicCircuit("smaller", "", circuit.View, circuit.SeparateQkv,
            circuit.Edges.Where(e => !(e.Source == "A0.0" && e.Destination == "Resid End")));
        Assert.Equal(circuit.Edges.Count - 1, smaller.Edges.Count);
        double[] Values(SymbolicCircuit c) => Evaluator.Run(setup.Request(new[] { methodology }, new[] { MetricKind.LogitDiffRecovered }, circuit: CircuitChoice.Of(c)))
            .Select(r => r.Value).OrderBy(v => v).ToArray();
        double[] full = Values(circuit), less = Values(smaller);
        double change = Statistics.Median(less) - Statistics.Median(full);
        CheckResult Try(double? answer) => CircuitFileExercises.MedianChange(setup, report, circuit, "A0.0", "Resid End", methodology, answer);
        Assert.True(Try(change).Passed, Try(change).Message);
        Assert.Contains("sign is reversed", Try(-change).Message);
        Assert.Contains("change of the mean", Try(less.Average() - full.Average()).Message);
        Assert.Contains("median itself", Try(Statistics.Median(less)).Message);
        Assert.Equal(CheckStatus.NotDone, Try(null).Status);
    }
}
