using TorchSharp;
using Workbook.Circuits;
using Workbook.Tasks;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Diagnostics;

/// <summary>
/// The patching benchmark's workload, shared by the BenchmarkDotNet project and <c>workbook bench patching</c> so that
/// both time the same thing: a GPT-2-small-shaped model with random weights, random clean and corrupt token batches,
/// a fixed random circuit of 771 edges (the size of the IOI edge circuit) whose complement is patched with resample
/// values at every position, and the same edges each at one random position (token-specific masks).
/// Everything is generated on the CPU from fixed seeds and then moved, so every device sees identical inputs.
/// </summary>
public sealed class PatchingWorkload : IDisposable
{
    /// <summary>Which 771-edge circuit is kept: the real IOI edge circuit (spec C.1; structured, as circuits are) or random edges.</summary>
    public enum CircuitKind { Ioi, Random }

    /// <summary>Edges of the benchmark circuit: as many as the IOI edge circuit.</summary>
    public const int DefaultCircuitEdges = 771;

    public HookedTransformer Model { get; }
    public ComputationGraph Graph { get; }
    public Circuit Circuit { get; }
    public Tensor Clean { get; }
    public Tensor Corrupt { get; }
    /// <summary>The circuit's complement at every position.</summary>
    public PatchMasks Masks { get; }
    /// <summary>The complement of the same edges, each kept at one random position.</summary>
    public PatchMasks PositionalMasks { get; }
    public PatchValues Values { get; }
    public int Batch { get; }
    public int Seq { get; }

    PatchingWorkload(HookedTransformer model, ComputationGraph graph, Circuit circuit, Tensor clean, Tensor corrupt,
        PatchMasks masks, PatchMasks positional, PatchValues values, int batch, int seq)
    {
        (Model, Graph, Circuit, Clean, Corrupt, Masks, PositionalMasks, Values, Batch, Seq) =
            (model, graph, circuit, clean, corrupt, masks, positional, values, batch, seq);
    }

    /// <summary>Builds the workload on <paramref name="device"/>; <paramref name="config"/> defaults to GPT-2 small's shape (<see cref="KnownConfigs.Gpt2SmallShape"/>).</summary>
    public static PatchingWorkload Create(int batch, int seq = 16, Device? device = null, TransformerConfig? config = null,
        int circuitEdges = DefaultCircuitEdges, int seed = 0, CircuitKind kind = CircuitKind.Random)
    {
        config ??= KnownConfigs.Gpt2SmallShape;
        if (batch < 1) throw new ArgumentException($"The batch must hold at least one prompt; got {batch}.");
        if (seq < 1 || seq > config.NCtx) throw new ArgumentException($"The sequence length must be within 1..{config.NCtx}; got {seq}.");
        device ??= CPU;
        var model = RandomModel(config, device, seed);
        try
        {
            var graph = ComputationGraph.Factorized(model.Config);
            if (circuitEdges < 0 || circuitEdges > graph.EdgeCount)
                throw new ArgumentException($"The circuit must have between 0 and {graph.EdgeCount} edges; got {circuitEdges}.");
            Circuit circuit, positional;
            if (kind == CircuitKind.Ioi)
            {
                // IOI positions of template 0 (ABBA, spec D.2): IO 2, S1 4, S1+1 5, S2 10, end 14.
                if (config.NLayers != 12 || config.NHeads != 12 || seq < 15)
                    throw new ArgumentException("The IOI circuit needs GPT-2 small's shape (12 layers, 12 heads) and at least 15 tokens.");
                var positions = new WordPositions(new[] { ("IO", 2), ("S1", 4), ("S1+1", 5), ("S2", 10), ("end", 14) }.Select(p => KeyValuePair.Create(p.Item1, p.Item2)));
                var ioi = OfficialCircuits.Get("ioi-edges").Circuit;
                circuit = ioi.Resolve(graph, positions, TokenPositions.All);
                positional = ioi.Resolve(graph, positions, TokenPositions.Specific);
            }
            else
            {
                circuit = RandomCircuit(graph, circuitEdges, seed + 1);
                var rng = new Random(seed + 3);
                positional = Circuit.From(graph, circuit.Edges.Select(e => new CircuitEdge(e.Edge, rng.Next(seq))));
            }
            var clean = RandomTokens(batch, seq, config.DVocab, seed + 1, device).DetachFromDisposeScope();
            var corrupt = RandomTokens(batch, seq, config.DVocab, seed + 2, device).DetachFromDisposeScope();
            // Masks on the model's device, as CircuitPatching builds them.
            var masks = PatchMasks.ForCircuit(circuit, new Methodology { Positions = TokenPositions.All }, seq, device: device);
            var positionalMasks = PatchMasks.ForCircuit(positional, new Methodology { Positions = TokenPositions.Specific }, seq, device: device);
            using var scope = NewDisposeScope();
            var values = PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, new PromptPair(clean, corrupt));
            values = new PatchValues(values.Values!.DetachFromDisposeScope());
            return new PatchingWorkload(model, graph, circuit, clean, corrupt, masks, positionalMasks, values, batch, seq);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Random weights N(0, 0.02²), LayerNorm gains 1, drawn on the CPU from <paramref name="seed"/> and copied to the device.</summary>
    public static HookedTransformer RandomModel(TransformerConfig config, Device? device = null, int seed = 0)
    {
        var model = new HookedTransformer(config, device);
        var generator = new Generator((ulong)seed, device: CPU);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            using var scope = NewDisposeScope(); // frees each CPU draw before the next
            if (name.EndsWith(".w", StringComparison.Ordinal)) p.fill_(1.0);
            else p.copy_(randn(p.shape, dtype: ScalarType.Float32, generator: generator).Times(0.02));
        }
        return model;
    }

    public static Tensor RandomTokens(int batch, int seq, long vocab, int seed, Device? device = null)
    {
        var generator = new Generator((ulong)seed, device: CPU);
        return randint(0, vocab, new long[] { batch, seq }, generator: generator, dtype: ScalarType.Int64).to(device ?? CPU);
    }

    /// <summary>A fixed random circuit of <paramref name="edges"/> distinct edges, at all positions.</summary>
    public static Circuit RandomCircuit(ComputationGraph graph, int edges = DefaultCircuitEdges, int seed = 1)
    {
        var rng = new Random(seed);
        var chosen = new HashSet<int>();
        while (chosen.Count < edges) chosen.Add(rng.Next(graph.EdgeCount));
        return Circuit.From(graph, chosen.Select(i => new CircuitEdge(graph.Edges[i], null)));
    }

    /// <summary>Edges patched by <see cref="Masks"/> (the complement of the circuit).</summary>
    public int PatchedEdges => Graph.EdgeCount - Circuit.Count;

    /// <summary>An unpatched forward pass of the clean batch; returns the logits (in the caller's dispose scope).</summary>
    public Tensor PlainForward()
    {
        using var _ = no_grad();
        return Model.Forward(Clean);
    }

    /// <summary>The clean batch with the circuit's complement resampled at every position.</summary>
    public Tensor PatchedForward()
    {
        using var _ = no_grad();
        return Patcher.Run(Model, Masks, Values, Clean);
    }

    /// <summary>The clean batch with token-specific complement masks.</summary>
    public Tensor PatchedForwardTokenSpecific()
    {
        using var _ = no_grad();
        return Patcher.Run(Model, PositionalMasks, Values, Clean);
    }

    public void Dispose()
    {
        Masks.Dispose();
        PositionalMasks.Dispose();
        Values.Values?.Dispose();
        Clean.Dispose();
        Corrupt.Dispose();
        Model.Dispose();
    }
}
