using TorchSharp;
using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>
/// A forward frees each block's intermediates when the block ends unless something may hold them: the number of live
/// tensors at each block's input stays flat instead of growing block by block, and the logits are the same either way.
/// </summary>
[Collection(Reliability.ResidentMemoryCollection.Name)] // live-tensor counts are per thread, but keep them undisturbed
public class BlockMemoryTests
{
    sealed class LiveTensorProbe(bool keepsBlockTensors) : IForwardInterceptor
    {
        public List<long> AtBlockInput { get; } = new();
        public bool KeepsBlockTensors => keepsBlockTensors;
        public void OnSource(SourceSite site, int layer, Tensor value)
        {
            if (site == SourceSite.BlockInput) AtBlockInput.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }

    [Fact]
    public void BlockIntermediatesAreFreedOnlyWhenNothingKeepsThem()
    {
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        Assert.True(model.Config.NLayers >= 3);
        using var tokens = tensor(new long[] { 409, 191, 80, 7, 12, 33, 5, 9 }).view(2, 4);
        using var scope = NewDisposeScope();

        var freeing = new LiveTensorProbe(keepsBlockTensors: false);
        var keeping = new LiveTensorProbe(keepsBlockTensors: true);
        var freed = model.Forward(tokens, interceptor: freeing);
        var kept = model.Forward(tokens, interceptor: keeping);

        // Kept: every block adds its intermediates (LayerNorms, Q/K/V, scores, MLP...), dozens of tensors each.
        var keptGrowth = keeping.AtBlockInput.Zip(keeping.AtBlockInput.Skip(1), (a, b) => b - a).ToArray();
        Assert.All(keptGrowth, g => Assert.True(g >= 10, $"a kept block left only {g} tensors; the probe no longer sees block intermediates"));
        // Freed: a block leaves exactly its output behind.
        var freedGrowth = freeing.AtBlockInput.Zip(freeing.AtBlockInput.Skip(1), (a, b) => b - a).ToArray();
        Assert.All(freedGrowth, g => Assert.Equal(1, g));
        Assert.Equal(0, (freed - kept).abs().max().item<float>());
    }

    [Fact]
    public void TensorsAHookKeepsStayAliveUntilTheForwardEnds()
    {
        // A hook may keep the tensor it sees (without cloning it) for the rest of the pass, so with hooks nothing is
        // freed early, even when the interceptor would allow it.
        using var model = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
        using var tokens = tensor(new long[] { 409, 191, 80, 7 }).view(1, 4);
        Tensor? kept = null;
        double? readLater = null;
        var hooks = new HookSet();
        hooks.Add("blocks.0.hook_resid_mid", (t, _) => { kept = t; return null; });
        hooks.Add($"blocks.{model.Config.NLayers - 1}.hook_resid_post", (t, _) => { readLater = kept!.IsInvalid ? null : kept.sum().item<float>(); return null; });
        var probe = new LiveTensorProbe(keepsBlockTensors: false);
        using var scope = NewDisposeScope();
        model.Forward(tokens, hooks, probe);
        Assert.NotNull(readLater);
        Assert.True(probe.AtBlockInput[^1] - probe.AtBlockInput[0] >= 10 * (model.Config.NLayers - 1), "with hooks, block intermediates must stay alive");
    }
}
