using TorchSharp;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Benchmarks;

/// <summary>A GPT-2-small-shaped model with random weights, and the patching workload of the benchmark.</summary>
public static class Gpt2SmallShape
{
    public static TransformerConfig Config => new()
    {
        Name = "gpt2-small-shape", Architecture = Architecture.Gpt2, NLayers = 12, DModel = 768, NHeads = 12, DHead = 64, DMlp = 3072,
        DVocab = 50257, NCtx = 1024, TiedEmbeddings = true,
    };

    public static HookedTransformer RandomModel(Device? device = null, int seed = 0)
    {
        torch.manual_seed(seed);
        var model = new HookedTransformer(Config, device);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith(".w")) p.fill_(1.0);
            else p.copy_(randn(p.shape) * 0.02);
        }
        return model;
    }

    public static Tensor RandomTokens(int batch, int seq, int seed, Device? device = null)
    {
        var g = new Generator((ulong)seed);
        return randint(0, 50257, new long[] { batch, seq }, generator: g, dtype: ScalarType.Int64).to(device ?? CPU);
    }

    /// <summary>A fixed random circuit of <paramref name="edges"/> edges (the size of the IOI edge circuit, 771).</summary>
    public static Circuit RandomCircuit(ComputationGraph graph, int edges = 771, int seed = 1)
    {
        var rng = new Random(seed);
        var chosen = new HashSet<int>();
        while (chosen.Count < edges) chosen.Add(rng.Next(graph.EdgeCount));
        return Circuit.From(graph, chosen.Select(i => new CircuitEdge(graph.Edges[i], null)));
    }
}
