using TorchSharp;
using Workbook.Checkpoints;
using Workbook.Embedded;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>
/// The dedicated edge-attribution path (one clean forward, one backward, a product per site) against the general
/// path (differentiable masks through <see cref="Patcher.Run"/>), and against finite differences of the loss.
/// </summary>
public class EdgeAttributionTests
{
    static (HookedTransformer Model, PromptPair Batch) Setup(string model) => FixtureModels.WithPrompts(model);

    // A loss that mixes every output position, so that every edge matters, and differs per prompt.
    static Tensor Loss(Tensor logits) => logits[.., 1.., ..].log_softmax(-1)[.., .., 3].sum(1) - 0.1 * logits[.., -1, 5];

    static ComputationGraph Graph(HookedTransformer m, string view) => view switch
    {
        "factorized" => ComputationGraph.Factorized(m.Config),
        "heads" => ComputationGraph.Factorized(m.Config, separateQkv: false),
        _ => ComputationGraph.Residual(m.Config),
    };

    /// <summary>The general path: masks at 0 that require gradients, per prompt (so that the gradient is per prompt too).</summary>
    static double[,] GeneralPath(HookedTransformer m, ComputationGraph g, PatchValues values, Tensor input, int prefix)
    {
        using var scope = NewDisposeScope();
        int B = (int)input.shape[0];
        using var masks = PatchMasks.Filled(g, 0, seqLen: prefix > 0 ? (int)input.shape[1] : null, batch: B, requiresGrad: true);
        Loss(Patcher.Run(m, masks, values, input)).sum().backward();
        var result = new double[B, g.EdgeCount];
        foreach (var e in g.Edges)
        {
            var (site, row) = masks.SlotOf(e.Destination);
            int col = e.Source.Index - masks.Sites[site].FirstSource;
            var grad = masks.Masks[site]!.grad!;
            for (int b = 0; b < B; b++)
                result[b, e.Index] = prefix > 0 ? grad[b, prefix.., row, col].sum().item<float>() : grad[b, 0, row, col].item<float>();
        }
        return result;
    }

    [Theory]
    [InlineData("tiny-gpt2", "factorized", "resample", 0)]
    [InlineData("tiny-gpt2", "residual", "resample", 0)]
    [InlineData("tiny-gpt2", "heads", "zero", 2)]
    [InlineData("tiny-neox", "factorized", "zero", 0)]
    [InlineData("tiny-neox", "residual", "resample", 1)]
    [InlineData("tiny-neox", "heads", "resample", 0)]
    public void DedicatedPathEqualsTheGeneralMaskGradient(string model, string view, string ablation, int prefix)
    {
        var (m, batch) = Setup(model);
        using var scope = NewDisposeScope();
        var g = Graph(m, view);
        var value = ablation == "zero" ? AblationValue.Zero : AblationValue.Resample;
        var values = PatchValues.Compute(m, g, value, PatchDirection.AblateClean, batch);
        var fast = EdgeAttribution.Compute(m, g, values, batch.Clean, Loss, prefix, perPrompt: true);
        var slow = GeneralPath(m, g, values, batch.Clean, prefix);
        double scale = 0;
        foreach (var v in slow) scale = Math.Max(scale, Math.Abs(v));
        Assert.True(scale > 1e-3, "the loss must depend on the masks");
        for (int e = 0; e < g.EdgeCount; e++)
        {
            double total = 0;
            for (int b = 0; b < batch.BatchSize; b++)
            {
                Assert.True(Math.Abs(fast.PerPrompt![b, e] - slow[b, e]) <= 1e-4 * scale + 1e-6,
                    $"{g.Edges[e].Name}, prompt {b}: dedicated {fast.PerPrompt[b, e]} vs general {slow[b, e]}");
                total += slow[b, e];
            }
            Assert.True(Math.Abs(fast.Total[e] - total) <= 1e-4 * scale + 1e-6, $"{g.Edges[e].Name}: total {fast.Total[e]} vs {total}");
        }
    }

    [Fact]
    public void AttributionMatchesFiniteDifferencesOfTheLoss()
    {
        var (m, batch) = Setup("tiny-gpt2");
        using var scope = NewDisposeScope();
        var g = ComputationGraph.Factorized(m.Config);
        var values = PatchValues.Compute(m, g, AblationValue.Resample, PatchDirection.AblateClean, batch);
        var scores = EdgeAttribution.Compute(m, g, values, batch.Clean, Loss);
        using var masks = PatchMasks.Filled(g, 0);
        double LossAt() => Loss(Patcher.Run(m, masks, values, batch.Clean)).sum().item<float>();
        var rng = new Random(3);
        using var _ = no_grad();
        for (int i = 0; i < 8; i++)
        {
            var edge = g.Edges[rng.Next(g.EdgeCount)];
            var view = masks.EdgeView(edge)!;
            const double h = 1e-2;
            view.fill_(h);
            double plus = LossAt();
            view.fill_(-h);
            double minus = LossAt();
            view.fill_(0);
            double numeric = (plus - minus) / (2 * h);
            Assert.True(Math.Abs(scores.Total[edge.Index] - numeric) <= 2e-3 + 2e-2 * Math.Abs(numeric),
                $"{edge.Name}: attribution {scores.Total[edge.Index]} vs finite difference {numeric}");
        }
    }

    [Theory]
    [InlineData("tracr-reverse")]
    [InlineData("tracr-xproportion")]
    public void DedicatedPathEqualsTheGeneralPathOnTracr(string alias)
    {
        using var m = ModelLoader.Load(alias);
        using var scope = NewDisposeScope();
        int vocab = (int)m.Config.DVocab, bos = alias == TracrReverse.Alias ? TracrReverse.BosToken : 0;
        var rng = new Random(5);
        long[,] Random() { var t = new long[8, 6]; for (int b = 0; b < 8; b++) { t[b, 0] = bos; for (int i = 1; i < 6; i++) t[b, i] = alias == TracrReverse.Alias ? rng.Next(3) : 2 + rng.Next(4); } return t; }
        var batch = PromptPair.FromArrays(Random(), Random());
        foreach (var g in new[] { ComputationGraph.Factorized(m.Config), ComputationGraph.Residual(m.Config) })
        {
            var values = PatchValues.Compute(m, g, AblationValue.Resample, PatchDirection.AblateClean, batch);
            Tensor TracrLoss(Tensor logits) => logits[.., 1.., ..].pow(2).sum(new long[] { 1, 2 });
            var fast = EdgeAttribution.Compute(m, g, values, batch.Clean, TracrLoss, perPrompt: true);
            using var masks = PatchMasks.Filled(g, 0, batch: 8, requiresGrad: true);
            TracrLoss(Patcher.Run(m, masks, values, batch.Clean)).sum().backward();
            foreach (var e in g.Edges)
            {
                var (site, row) = masks.SlotOf(e.Destination);
                var grad = masks.Masks[site]!.grad![.., 0, row, e.Source.Index - masks.Sites[site].FirstSource];
                for (int b = 0; b < 8; b++)
                    Assert.True(Math.Abs(fast.PerPrompt![b, e.Index] - grad[b].item<float>()) <= 1e-3 + 1e-4 * Math.Abs(grad[b].item<float>()),
                        $"{alias} {g.View} {e.Name} prompt {b}: {fast.PerPrompt[b, e.Index]} vs {grad[b].item<float>()}");
            }
        }
    }
}
