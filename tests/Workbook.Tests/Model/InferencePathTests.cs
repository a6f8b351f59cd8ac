using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>
/// Without gradients the forward writes biases and GPT-2's GELU into fresh tensors in place (fewer large temporaries);
/// with gradients it keeps the plain autograd form. Both must give the same numbers bit for bit: the plain form is the
/// slow, obviously correct reference, and the toy models' committed weights were trained through it.
/// </summary>
public class InferencePathTests
{
    [Theory]
    [InlineData("tiny-gpt2")]   // gelu_new MLPs, learned positions, tied unembedding
    [InlineData("tiny-neox")]   // parallel attention and MLP, rotary, untied unembedding
    public void NoGradForwardEqualsTheAutogradFormBitForBit(string model)
    {
        var fixture = ScenarioFixture.Load($"{model}-scenarios.json");
        using var m = ModelLoader.Load(TestFiles.Fixture(model));
        using var scope = NewDisposeScope();
        var tokens = TensorAssert.Tokens(fixture.Clean);
        foreach (var p in m.parameters()) p.requires_grad_(true);
        Tensor withGrad;
        using (enable_grad())
        {
            withGrad = m.Forward(tokens);
            Assert.True(withGrad.requires_grad); // the autograd form really ran
        }
        Tensor inference;
        using (no_grad()) inference = m.Forward(tokens);
        Assert.True(withGrad.detach().eq(inference).all().item<bool>(), $"{model}: max |difference| {(withGrad.detach() - inference).abs().max().item<float>()}");
        // And both are still HuggingFace's numbers.
        TensorAssert.Close(fixture["unpatched"].Logits, inference, 1e-4, model);
    }

    [Fact]
    public void TheInPlaceGeluIsGpt2sFormulaAndLeavesItsInputAlone()
    {
        using var scope = NewDisposeScope();
        var config = new TransformerConfig
        {
            Name = "gelu-probe", Architecture = Architecture.Gpt2, NLayers = 1, DModel = 4, NHeads = 1, DHead = 4, DMlp = 1201, DVocab = 3, NCtx = 2,
        };
        using var m = Workbook.Diagnostics.PatchingWorkload.RandomModel(config);
        var x = linspace(-6, 6, 1201, dtype: ScalarType.Float32).view(1, 1, 1201);
        var hooks = new HookSet();
        hooks.Add("blocks.0.mlp.hook_pre", (_, _) => x.clone());
        Tensor pre, post;
        using (no_grad())
        {
            var (_, cache) = m.RunWithCache(zeros(1, 1, dtype: ScalarType.Int64), n => n.StartsWith("blocks.0.mlp.hook_p", StringComparison.Ordinal), hooks);
            using (cache) (pre, post) = (cache["blocks.0.mlp.hook_pre"].clone(), cache["blocks.0.mlp.hook_post"].clone());
        }
        Assert.True(pre.eq(x).all().item<bool>(), "the activation wrote into its input (the cached pre-activation changed)");
        // Reference in float64 from the formula itself: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
        var xd = x.to(ScalarType.Float64);
        var reference = xd.Times(0.5) * tanh(xd.Plus(xd.Power(3).Times(0.044715)).Times(Math.Sqrt(2 / Math.PI))).Plus(1);
        Assert.True((post.to(ScalarType.Float64) - reference).abs().max().item<double>() < 1e-6);
    }
}
