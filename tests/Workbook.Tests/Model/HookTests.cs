using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

public class HookTests
{
    static readonly Lazy<ScenarioFixture> Gpt2Fixture = new(() => ScenarioFixture.Load("tiny-gpt2-scenarios.json"));

    static HookedTransformer Load(string name) => ModelLoader.Load(TestFiles.Fixture(name));

    [Fact]
    public void SequentialResidualIsMidPlusMlpOut()
    {
        using var m = Load("tiny-gpt2");
        using var scope = NewDisposeScope();
        var (_, cache) = m.RunWithCache(TensorAssert.Tokens(Gpt2Fixture.Value.Clean));
        using (cache)
        {
            for (int l = 0; l < m.Config.NLayers; l++)
            {
                TensorAssert.Close(cache[HookNames.ResidPost[l]], cache[HookNames.ResidMid[l]] + cache[HookNames.MlpOut[l]], 1e-5, $"layer {l}");
                TensorAssert.Close(cache[HookNames.ResidMid[l]], cache[HookNames.ResidPre[l]] + cache[HookNames.AttnOut[l]], 1e-5, $"layer {l}");
            }
        }
    }

    [Fact]
    public void ParallelResidualIsPrePlusAttnPlusMlp()
    {
        using var m = Load("tiny-neox");
        using var scope = NewDisposeScope();
        var fixture = ScenarioFixture.Load("tiny-neox-scenarios.json");
        var (_, cache) = m.RunWithCache(TensorAssert.Tokens(fixture.Clean));
        using (cache)
        {
            Assert.False(cache.TryGet(HookNames.ResidMid[0], out _)); // parallel blocks have no resid_mid
            for (int l = 0; l < m.Config.NLayers; l++)
            {
                var sum = cache[HookNames.ResidPre[l]] + cache[HookNames.AttnOut[l]] + cache[HookNames.MlpOut[l]];
                TensorAssert.Close(cache[HookNames.ResidPost[l]], sum, 1e-5, $"layer {l}");
                // The MLP of a parallel block reads the block input.
                TensorAssert.Close(cache[HookNames.MlpIn[l]], cache[HookNames.ResidPre[l]], 0, $"layer {l}");
            }
        }
    }

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    public void HeadResultsSumToAttentionOutputMinusBias(string model)
    {
        using var m = Load(model);
        using var scope = NewDisposeScope();
        var fixture = ScenarioFixture.Load($"{model}-scenarios.json");
        var (_, cache) = m.RunWithCache(TensorAssert.Tokens(fixture.Clean));
        using (cache)
        {
            for (int l = 0; l < m.Config.NLayers; l++)
            {
                var result = cache[HookNames.Result[l]]; // [B, T, H, D]
                Assert.Equal(m.Config.NHeads, result.shape[2]);
                TensorAssert.Close(cache[HookNames.AttnOut[l]], result.sum(dim: 2) + m.blocks[l].attn.b_O, 1e-5, $"layer {l}");
            }
        }
    }

    [Fact]
    public void ReplacingAnActivationChangesLogitsOnlyForThatCall()
    {
        using var m = Load("tiny-gpt2");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var tokens = TensorAssert.Tokens(Gpt2Fixture.Value.Clean);
        var plain = m.Forward(tokens);
        var hooks = new HookSet().Replace(HookNames.Z[1], z => zeros_like(z));
        var hooked = m.Forward(tokens, hooks);
        Assert.True(TensorAssert.MaxAbsDiff(plain, hooked) > 1e-2, "zeroing hook_z must change the logits");
        TensorAssert.Close(plain, m.Forward(tokens), 0, "plain call after a hooked call");

        using (m.AttachHooks(hooks))
        {
            Assert.Equal(1, m.AttachedHookScopes);
            TensorAssert.Close(hooked, m.Forward(tokens), 1e-6, "attached hooks");
        }
        Assert.Equal(0, m.AttachedHookScopes);
        TensorAssert.Close(plain, m.Forward(tokens), 0, "after the scope");
    }

    [Fact]
    public void ReadingPerHeadInputsDoesNotChangeTheResult()
    {
        // Hooking q/k/v inputs switches the forward to per-head copies; the function must not change.
        using var m = Load("tiny-gpt2");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var tokens = TensorAssert.Tokens(Gpt2Fixture.Value.Clean);
        int fired = 0;
        var hooks = new HookSet().Read(HookNames.KInput[2], t => { fired++; Assert.Equal(new long[] { 4, 10, 4, 64 }, t.shape); });
        TensorAssert.Close(m.Forward(tokens), m.Forward(tokens, hooks), 1e-5);
        Assert.Equal(1, fired);
    }

    [Fact]
    public void PatchingOneHeadsKeyInputTouchesOnlyThatHead()
    {
        using var m = Load("tiny-gpt2");
        using var scope = NewDisposeScope();
        var tokens = TensorAssert.Tokens(Gpt2Fixture.Value.Clean);
        var hooks = new HookSet().Replace(HookNames.KInput[1], x =>
        {
            var y = x.clone();
            y[.., .., 2] = zeros_like(y[.., .., 2]);
            return y;
        });
        var (_, plainCache) = m.RunWithCache(tokens);
        var (_, cache) = m.RunWithCache(tokens, hooks: hooks);
        using (plainCache)
        using (cache)
        {
            var before = plainCache[HookNames.Pattern[1]];
            var after = cache[HookNames.Pattern[1]];
            for (int h = 0; h < 4; h++)
            {
                double diff = TensorAssert.MaxAbsDiff(before[.., h], after[.., h]);
                if (h == 2) Assert.True(diff > 1e-3);
                else Assert.Equal(0, diff, 6);
            }
        }
    }

    [Fact]
    public void EveryListedHookFiresWithItsShape()
    {
        using var m = Load("tiny-neox");
        var hooks = m.ListHooks(batch: 2, seq: 5);
        Assert.Equal(hooks.Count, hooks.Select(h => h.Name).Distinct().Count());
        Assert.Contains(hooks, h => h.Name == "blocks.2.attn.hook_pattern" && h.Shape.SequenceEqual(new long[] { 2, 4, 5, 5 }));
        Assert.Contains(hooks, h => h.Name == "blocks.0.mlp.hook_pre" && h.Shape.SequenceEqual(new long[] { 2, 5, 256 }));
        Assert.Contains(hooks, h => h.Name == "blocks.1.attn.hook_rot_q");
        Assert.Contains(hooks, h => h.Name == HookNames.FinalLnNormalized.Name);
    }

    /// <summary>
    /// Every kind of block (sequential, parallel, attention-only; with or without LayerNorm, learned or rotary positions)
    /// gets its hook list from the declarations alone: each hook fires once per forward with its declared shape (ListHooks
    /// checks the shape), the per-layer count is the declarations present for the config, and the count of hooks that are
    /// only in some blocks follows the config's switches.
    /// </summary>
    [Theory]
    [InlineData(false, false, true, PositionalEmbedding.Learned, 23)]   // GPT-2: 15 attention hooks (5 inputs, 2 LN, q/k/v, scores, pattern, z, result, out), 7 MLP, resid pre/post
    [InlineData(false, true, true, PositionalEmbedding.Rotary, 24)]     // GPT-NeoX: + rot_q, rot_k, − resid_mid
    [InlineData(true, false, true, PositionalEmbedding.Learned, 16)]    // attention-only: − 7 MLP hooks
    [InlineData(false, false, false, PositionalEmbedding.Learned, 19)]  // Tracr-style: − 4 LayerNorm hooks
    public void EveryBlockKindGetsItsHooksFromTheDeclarations(bool attentionOnly, bool parallel, bool layerNorm, PositionalEmbedding positional, int perBlock)
    {
        var config = new TransformerConfig
        {
            Name = "kind", Architecture = Architecture.Gpt2, NLayers = 2, DModel = 8, NHeads = 2, DHead = 4, DMlp = attentionOnly ? 0 : 16, DVocab = 11, NCtx = 6,
            AttentionOnly = attentionOnly, ParallelAttnMlp = parallel, UseLayerNorm = layerNorm, Positional = positional, RotaryDim = positional == PositionalEmbedding.Rotary ? 2 : 0,
        };
        using var m = Workbook.Diagnostics.PatchingWorkload.RandomModel(config);
        var hooks = m.ListHooks(batch: 3, seq: 5);
        Assert.Equal(hooks.Select(h => h.Name), m.HookPointNames());
        Assert.Equal(perBlock, hooks.Count(h => h.Name.StartsWith("blocks.1.", StringComparison.Ordinal)));
        int aroundBlocks = 1 + (positional == PositionalEmbedding.Learned ? 1 : 0) + (layerNorm ? 2 : 0);
        Assert.Equal(2 * perBlock + aroundBlocks, hooks.Count);
        Assert.Equal("blocks.1.hook_resid_post", HookNames.ResidPost[1]);
        Assert.Equal(new long[] { 3, 2, 5, 5 }, HookNames.Pattern.ShapeFor(config, 3, 5));
    }

    [Fact]
    public void UnknownHookNameIsRejectedWithSuggestion()
    {
        using var m = Load("tiny-gpt2");
        using var tokens = zeros(1, 3, dtype: ScalarType.Int64);
        var e = Assert.Throws<ArgumentException>(() => m.Forward(tokens, new HookSet().Read("blocks.1.attn.hook_patern", _ => { })));
        Assert.Contains("blocks.1.attn.hook_pattern", e.Message);
    }

    [Fact]
    public void BadTokensAreRejected()
    {
        using var m = Load("tiny-gpt2");
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentException>(() => m.Forward(tensor(new long[,] { { 1, 600 } }))).Message);
        Assert.Contains("[batch, seq]", Assert.Throws<ArgumentException>(() => m.Forward(tensor(new long[] { 1, 2 }))).Message);
        Assert.Contains("exceeds the model's context", Assert.Throws<ArgumentException>(() => m.Forward(zeros(1, 65, dtype: ScalarType.Int64))).Message);
    }
}
