using Workbook.Checkpoints;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>Logits at the last position only are the last position of the full logits, unpatched and patched.</summary>
public class LastPositionOnlyTests
{
    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    public void TheLastPositionsLogitsAreTheFullRunsLastRow(string name)
    {
        using var model = ModelLoader.Load(TestFiles.Fixture(name));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(4);
        var clean = randint(0, model.Config.DVocab, new long[] { 3, 9 });
        var corrupt = randint(0, model.Config.DVocab, new long[] { 3, 9 });
        var full = model.Forward(clean);
        var last = model.Forward(clean, null, new LastPositionOnly());
        Assert.Equal(new long[] { 3, 1, model.Config.DVocab }, last.shape);
        TensorAssert.Close(full[.., ^1..], last, 1e-5, $"{name} unpatched");

        var graph = ComputationGraph.Factorized(model.Config);
        using var masks = PatchMasks.ForEdges(graph, graph.Edges.Where(e => e.Index % 3 == 0).Select(e => new Workbook.Circuits.CircuitEdge(e, null)), 9);
        var values = PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, new PromptPair(clean, corrupt));
        var patched = Patcher.Run(model, masks, values, clean);
        var patchedLast = Patcher.Run(model, masks, values, clean, lastPositionOnly: true);
        TensorAssert.Close(patched[.., ^1..], patchedLast, 1e-5, $"{name} patched");
        Assert.True((patched - full).abs().max().item<float>() > 1e-3, "the patch changed nothing");
    }
}
