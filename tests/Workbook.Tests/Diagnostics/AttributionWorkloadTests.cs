using Workbook.Diagnostics;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Tests.Diagnostics;

/// <summary>The edge-attribution benchmark's workload, on a small shape.</summary>
public class AttributionWorkloadTests
{
    static TransformerConfig Small => KnownConfigs.Gpt2SmallShape with
    {
        Name = "small", NLayers = 2, DModel = 32, NHeads = 4, DHead = 8, DMlp = 64, DVocab = 97, NCtx = 32,
    };

    [Fact]
    public void AttributionScoresEveryEdgeAndMatchesTheGeneralPath()
    {
        using var scope = NewDisposeScope();
        using var w = AttributionWorkload.Create(batch: 3, seq: 5, config: Small);
        Assert.True(double.IsFinite(w.ForwardBackward()));
        var fast = w.Attribution();
        Assert.Equal(w.Graph.EdgeCount, fast.Total.Length);
        // The general path: differentiable masks at 0 through the patched forward.
        var values = PatchValues.Compute(w.Model, w.Graph, AblationValue.Resample, PatchDirection.AblateClean, new PromptPair(w.Clean, w.Corrupt));
        using var masks = PatchMasks.Filled(w.Graph, 0, requiresGrad: true);
        w.Loss(Patcher.Run(w.Model, masks, values, w.Clean)).sum().backward();
        double scale = fast.Total.Max(Math.Abs);
        Assert.True(scale > 0);
        foreach (var e in w.Graph.Edges)
        {
            var (site, row) = masks.SlotOf(e.Destination);
            double general = masks.Masks[site]!.grad![0, 0, row, e.Source.Index - masks.Sites[site].FirstSource].item<float>();
            Assert.True(Math.Abs(general - fast.Total[e.Index]) <= 1e-4 * scale, $"{e.Name}: {general} vs {fast.Total[e.Index]}");
        }
    }
}
