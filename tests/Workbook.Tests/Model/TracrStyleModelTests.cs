using Workbook.Model;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>A hand-built two-layer bidirectional, LayerNorm-free ReLU model against outputs computed by hand.</summary>
public class TracrStyleModelTests
{
    [Fact]
    public void HandBuiltBidirectionalModelGivesHandComputedOutput()
    {
        var config = new TransformerConfig
        {
            Name = "hand-built", Architecture = Architecture.Tracr, NLayers = 2, DModel = 2, NHeads = 1, DHead = 4, DMlp = 1,
            DVocab = 2, DVocabOut = 2, NCtx = 3, Activation = ActivationFunction.Relu, UseLayerNorm = false, Causal = false,
        };
        using var m = new HookedTransformer(config);
        using (no_grad())
        {
            m.embed.W_E.copy_(tensor(new float[,] { { 1, 0 }, { 0, 1 } }));
            // Layer 0: W_Q = W_K = 0 gives a uniform pattern over ALL positions (bidirectional);
            // the head copies the mean of dim 0 into dim 1.
            m.blocks[0].attn.W_V[0, 0, 0] = tensor(1f);
            m.blocks[0].attn.W_O[0, 0, 1] = tensor(1f);
            // MLP 0: adds 2·relu(x0 − 0.5) to dim 1.
            m.blocks[0].mlp!.W_in[0, 0] = tensor(1f);
            m.blocks[0].mlp!.b_in[0] = tensor(-0.5f);
            m.blocks[0].mlp!.W_out[0, 1] = tensor(2f);
            // Layer 1: score = (2·x0_q)(1·x0_k)/sqrt(4) = x0_q·x0_k; value = x0; written to dim 1.
            m.blocks[1].attn.W_Q[0, 0, 0] = tensor(2f);
            m.blocks[1].attn.W_K[0, 0, 0] = tensor(1f);
            m.blocks[1].attn.W_V[0, 0, 0] = tensor(1f);
            m.blocks[1].attn.W_O[0, 0, 1] = tensor(1f);
            m.unembed.W_U!.copy_(eye(2));
        }
        using var logits = m.Forward(tensor(new long[,] { { 0, 1, 0 } }));

        // After layer 0: every position gains 2/3 on dim 1 (mean of dim 0 over all three positions),
        // and positions 0 and 2 (x0 = 1) gain 2·0.5 = 1 from the MLP: [1, 5/3], [0, 5/3], [1, 5/3].
        // Layer 1: queries with x0 = 1 weight keys e:1:e, reading x0 = 1,0,1 -> 2e/(2e+1); the x0 = 0 query is uniform -> 2/3.
        double e = Math.E, a = 2 * e / (2 * e + 1);
        var expected = tensor(new double[,,] { { { 1, 5.0 / 3 + a }, { 0, 5.0 / 3 + 2.0 / 3 }, { 1, 5.0 / 3 + a } } });
        TensorAssert.Close(expected, logits, 1e-6);
    }
}
