using Workbook.Checkpoints;
using Workbook.Discovery;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Discovery;

/// <summary>
/// EAP and HISP scores from a discovery run against finite differences of the same loss over each edge's mask: EAP with
/// one mask shared by the batch (mean loss), HISP with a mask per prompt (mean of the absolute per-prompt slopes).
/// A reference GPT-2 checkpoint on the Reverse prompts, with the logit-difference target, so that every edge matters.
/// </summary>
public class AttributionScoreTests
{
    static readonly Lazy<HookedTransformer> Model = new(() => ModelLoader.Load(TestFiles.Fixture("tiny-gpt2")));

    [Theory]
    [InlineData("eap")]
    [InlineData("hisp")]
    public void ScoresEqualFiniteDifferencesOfTheDiscoveryLoss(string algorithm)
    {
        var model = Model.Value;
        var task = KnownTasks.TracrReverse;
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 3, 6), null);
        var a = DiscoveryNames.ParseAlgorithm(algorithm);
        var result = CircuitDiscovery.Run(new DiscoveryRequest { Model = model, Task = task, Parts = parts, Algorithm = a, BatchSize = 4 });
        var scores = result.Scores;
        Assert.Equal(DiscoveryTarget.LogitDiff, scores.Info.Target);
        Assert.Equal(6, scores.Info.Prompts);

        using var scope = NewDisposeScope();
        var graph = scores.Graph;
        using var data = DiscoveryData.Prepare(model, task, parts, 4);   // two batches: 4 and 2 prompts
        Assert.Equal(2, data.Batches.Count);
        var values = data.Batches.Select(b => PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, b.Pair)).ToList();
        var rng = new Random(2);
        const double h = 1e-2;
        using var _ = no_grad();
        // HISP needs two forward passes per prompt and edge: fewer edges keep the test quick.
        for (int i = 0; i < (a == DiscoveryAlgorithm.Hisp ? 3 : 6); i++)
        {
            var edge = graph.Edges[rng.Next(graph.EdgeCount)];
            double expected = 0;
            for (int b = 0; b < data.Batches.Count; b++)
            {
                var batch = data.Batches[b];
                // EAP: the whole batch's mask moves; HISP: one prompt's mask at a time.
                using var masks = PatchMasks.Filled(graph, 0, batch: a == DiscoveryAlgorithm.Hisp ? batch.Count : null);
                double LossSum() => data.PerPromptLoss(DiscoveryTarget.LogitDiff, Patcher.Run(model, masks, values[b], batch.Pair.Clean), batch).sum().item<double>();
                var view = masks.EdgeView(edge)!;
                if (a == DiscoveryAlgorithm.Eap)
                {
                    view.fill_(h);
                    double plus = LossSum();
                    view.fill_(-h);
                    double minus = LossSum();
                    view.fill_(0);
                    expected += (plus - minus) / (2 * h);
                }
                else
                {
                    for (int p = 0; p < batch.Count; p++)
                    {
                        view[p].fill_(h);
                        double plus = LossSum();
                        view[p].fill_(-h);
                        double minus = LossSum();
                        view[p].fill_(0);
                        expected += Math.Abs((plus - minus) / (2 * h));
                    }
                }
            }
            expected /= 6;   // the paper's loss is the mean over prompts
            Assert.True(Math.Abs(scores[edge] - expected) <= 1e-3 + 2e-2 * Math.Abs(expected), $"{algorithm} {edge.Name}: {scores[edge]} vs finite difference {expected}");
        }
    }

    [Fact]
    public void HispBoundsEapEdgeByEdge()
    {
        var model = Model.Value;
        var task = KnownTasks.TracrReverse;
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 4, 10), null);
        DiscoveryResult Run(DiscoveryAlgorithm a, SearchSpace s) =>
            CircuitDiscovery.Run(new DiscoveryRequest { Model = model, Task = task, Parts = parts, Algorithm = a, Search = s });
        foreach (var search in new[] { SearchSpace.Edge, SearchSpace.Node })
        {
            var eap = Run(DiscoveryAlgorithm.Eap, search);
            var hisp = Run(DiscoveryAlgorithm.Hisp, search);
            Assert.Equal(search == SearchSpace.Node, eap.Nodes is not null);
            if (search == SearchSpace.Edge)
            {
                foreach (var e in eap.Scores.Graph.Edges)
                    Assert.True(Math.Abs(eap.Scores[e]) <= hisp.Scores[e] + 1e-9, $"{e.Name}: |eap| {Math.Abs(eap.Scores[e])} > hisp {hisp.Scores[e]}");
                Assert.Contains(eap.Scores.Graph.Edges, e => eap.Scores[e] < 0);      // signed
                Assert.DoesNotContain(hisp.Scores.Graph.Edges, e => hisp.Scores[e] < 0);
            }
            else
            {
                var e = eap.Nodes!.ToDictionary(n => n.Node, n => n.Score);
                foreach (var n in hisp.Nodes!) Assert.True(Math.Abs(e[n.Node]) <= n.Score + 1e-9, $"node {n.Node}");
            }
        }
    }
}
