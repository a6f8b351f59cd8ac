using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// Throughput mode for sweeps: several circuits evaluated on the same prompts in one forward pass, stacked along the
/// batch (circuit c reads prompts [c·B, (c+1)·B) of the replicated input). The patch values are computed once by the
/// caller and shared by every circuit (each circuit's engine reads the same [sources, B or 1, T or 1, D] tensor); only
/// the model's own work (projections, attention, MLPs, unembedding) runs batched.
///
/// Each circuit keeps its own engine (<see cref="EdgePatcher"/> or <see cref="NodePatcher"/>, exactly as
/// <see cref="Patcher.Run"/> builds it) and sees its slice of every activation with the shapes of a one-circuit pass,
/// so the patching arithmetic is the one-circuit path's. What may differ is the batched model work: a product over
/// C·B rows instead of B (see the README's performance notes for how far libtorch's CPU kernels keep rows identical).
/// Circuits whose engines need per-head outputs in different blocks go in different forwards, because the model then
/// computes a block's attention output another way.
/// </summary>
public static class CircuitStack
{
    /// <summary>The most circuits a caller may ask for in one forward pass (<c>--circuits-per-forward</c>).</summary>
    public const int MaxCircuitsPerForward = 256;

    /// <summary>The most circuits the memory estimate alone puts in one forward pass: beyond this the batch is large enough to gain nothing more.</summary>
    public const int DefaultMaxCircuitsPerForward = 32;

    /// <summary>The share of the free memory a stacked forward's activations may take (other work shares the machine).</summary>
    public const double MemoryShare = 0.25;

    /// <summary>
    /// How many circuits go in one forward pass: <paramref name="requested"/> when given (1 is the one-circuit path); else 1
    /// when <paramref name="device"/> is the CPU (measured there, stacking gained at most 1.3× and made faithfulness curves
    /// slower: see the README); else as many as <see cref="ActivationMemory.EstimatePatchedBytes"/> of <paramref name="batch"/>
    /// × <paramref name="seq"/> tokens fit in <see cref="MemoryShare"/> of <paramref name="availableBytes"/> (default: the
    /// host memory free now; the estimate does not see a GPU's own memory), at least 1 and at most
    /// <see cref="DefaultMaxCircuitsPerForward"/> and <paramref name="circuits"/>.
    /// </summary>
    public static int CircuitsPerForward(TransformerConfig config, long batch, long seq, int circuits, int? requested = null, long? availableBytes = null,
        Device? device = null)
    {
        CheckRequested(requested);
        if (circuits < 1) throw new ArgumentException("Give at least one circuit to evaluate.");
        if (requested is int r) return Math.Min(r, circuits);
        if (device is { type: DeviceType.CPU }) return 1;
        double perCircuit = ActivationMemory.EstimatePatchedBytes(config, batch, seq);
        double fit = Math.Floor((availableBytes ?? ActivationMemory.AvailableBytes()) * MemoryShare / perCircuit);
        return (int)Math.Clamp(fit, 1, Math.Min(circuits, DefaultMaxCircuitsPerForward));
    }

    /// <summary>Refuses a requested number of circuits per forward pass outside 1..<see cref="MaxCircuitsPerForward"/>.</summary>
    public static void CheckRequested(int? requested)
    {
        if (requested is int r && (r < 1 || r > MaxCircuitsPerForward))
            throw new ArgumentException($"The number of circuits per forward pass must be within 1..{MaxCircuitsPerForward}, got {r}.");
    }

    /// <summary>
    /// The logits of <paramref name="input"/> [B, T] patched by each of <paramref name="masks"/> (one per circuit, all on
    /// one graph) with the shared <paramref name="values"/>, [B, T, V] each (or [B, 1, V] with <paramref name="lastPositionOnly"/>),
    /// in the caller's dispose scope. <paramref name="circuitsPerForward"/> 1 runs <see cref="Patcher.Run"/> per circuit.
    /// For evaluation: the passes run without gradients.
    /// </summary>
    public static IReadOnlyList<Tensor> Logits(HookedTransformer model, IReadOnlyList<PatchMasks> masks, PatchValues values, Tensor input,
        int circuitsPerForward, bool lastPositionOnly = false)
    {
        var result = new Tensor[masks.Count];
        using var keep = NewDisposeScope();
        ForEach(model, masks, values, input, circuitsPerForward, (i, logits) => result[i] = logits.MoveToOtherDisposeScope(keep), lastPositionOnly);
        foreach (var t in result) t.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>
    /// Like <see cref="Logits"/>, handing each circuit's logits to <paramref name="use"/> (circuit index, logits) while its
    /// forward pass's tensors are alive; they are freed afterwards unless <paramref name="use"/> moves them out of the
    /// current dispose scope. Circuits come in an order that groups compatible ones, not necessarily index order.
    /// Returns the number of forward passes run.
    /// </summary>
    public static int ForEach(HookedTransformer model, IReadOnlyList<PatchMasks> masks, PatchValues values, Tensor input,
        int circuitsPerForward, Action<int, Tensor> use, bool lastPositionOnly = false)
    {
        if (masks.Count == 0) throw new ArgumentException("Give at least one circuit to evaluate.");
        CheckRequested(circuitsPerForward);
        if (input.dim() != 2) throw new ArgumentException($"The prompts must be token ids [batch, seq]; got [{string.Join(", ", input.shape)}].");
        var graph = masks[0].Graph;
        for (int i = 0; i < masks.Count; i++)
        {
            if (!SameGraph(graph, masks[i].Graph))
                throw new ArgumentException($"Circuit {i} is on the {masks[i].Graph.Describe()} of '{masks[i].Graph.Config.Name}', circuit 0 on the {graph.Describe()} of '{graph.Config.Name}': stacked circuits share one graph.");
            Patcher.Check(model, masks[i], values, input);
        }
        if (circuitsPerForward == 1 || masks.Count == 1)
        {
            using var noGrad = no_grad();
            for (int i = 0; i < masks.Count; i++)
            {
                using var scope = NewDisposeScope();
                use(i, Patcher.Run(model, masks[i], values, input, lastPositionOnly: lastPositionOnly));
            }
            return masks.Count;
        }

        using var outer = NewDisposeScope();
        if (values.Values is { } pv && !Devices.Same(pv.device, model.Device)) values = new PatchValues(pv.to(model.Device));
        long batch = input.shape[0];
        // Engines are planned up front (small host work and a few index tensors each) so that circuits can be grouped by
        // the blocks whose per-head outputs they need; their activation buffers appear only during their own forward.
        var engines = masks.Select(m => Patcher.Interceptor(model, m, values, replaceHeads: model.AttachedHookScopes == 0)).ToArray();
        var groups = Enumerable.Range(0, masks.Count)
            .GroupBy(i => HeadResultSignature(engines[i], graph.Config.NLayers) + "|" + ReplacedHeadSignature(engines[i], graph.Config.NLayers))
            .SelectMany(g => g.Chunk(circuitsPerForward)).ToList();
        foreach (var chunk in groups)
        {
            using var scope = NewDisposeScope();
            IForwardInterceptor stacked = chunk.Length == 1 ? engines[chunk[0]] : new StackedInterceptor(chunk.Select(i => engines[i]).ToArray(), batch);
            if (lastPositionOnly) stacked = new LastPositionOnly(stacked);
            using var _ = no_grad();
            var stackedInput = chunk.Length == 1 ? input : input.repeat(chunk.Length, 1);
            var logits = model.Forward(stackedInput, null, stacked);
            for (int c = 0; c < chunk.Length; c++)
            {
                using var inner = NewDisposeScope();
                use(chunk[c], logits.narrow(0, c * batch, batch));
            }
        }
        return groups.Count;
    }

    /// <summary>Whether two graphs are the same nodes and edges (the same config, view and Q/K/V split).</summary>
    internal static bool SameGraph(ComputationGraph a, ComputationGraph b) => ReferenceEquals(a, b) ||
        (a.View == b.View && a.SeparateQkv == b.SeparateQkv && a.Config.Name == b.Config.Name && a.Config.NLayers == b.Config.NLayers
         && a.Config.NHeads == b.Config.NHeads && a.Sources.Count == b.Sources.Count && a.EdgeCount == b.EdgeCount);

    static string HeadResultSignature(IForwardInterceptor engine, int layers) =>
        string.Concat(Enumerable.Range(0, layers).Select(l => engine.NeedsHeadResults(l) ? '1' : '0'));

    /// <summary>The heads each block computes: circuits in one forward must compute the same heads.</summary>
    static string ReplacedHeadSignature(IForwardInterceptor engine, int layers) =>
        string.Join(";", Enumerable.Range(0, layers).Select(l => (engine as IReplacesHeads)?.ComputedHeads(l) is { } c ? string.Join(",", c) : "all"));
}

/// <summary>
/// The interceptor of a stacked forward pass: circuit c's engine sees the batch slice [c·B, (c+1)·B) of every source and
/// destination, and what it returns is put back in place. Destinations and head inputs of circuits whose engine keeps
/// them unchanged are the slice itself.
/// </summary>
internal sealed class StackedInterceptor(IReadOnlyList<IForwardInterceptor> circuits, long promptsPerCircuit) : IForwardInterceptor
{
    Tensor Slice(Tensor t, long dim, int circuit) => t.narrow(dim, circuit * promptsPerCircuit, promptsPerCircuit);

    public void OnSource(SourceSite site, int layer, Tensor value)
    {
        long dim = site == SourceSite.HeadResults ? 1 : 0; // per-head outputs are [H, B, T, D]
        for (int c = 0; c < circuits.Count; c++) circuits[c].OnSource(site, layer, Slice(value, dim, c));
    }

    // CircuitStack groups circuits so that their engines agree here.
    public bool NeedsHeadResults(int layer) => circuits.Any(c => c.NeedsHeadResults(layer));

    // CircuitStack groups circuits whose engines compute the same heads; each contributes its replaced heads' sum for its slice.
    public HeadReplacement? ReplacedHeads(int layer, Tensor residPre)
    {
        var parts = circuits.Select((c, i) => c.ReplacedHeads(layer, Slice(residPre, 0, i))).ToArray();
        if (parts.All(p => p is null)) return null;
        if (parts.Any(p => p is null) || parts.Any(p => !p!.Computed.SequenceEqual(parts[0]!.Computed)))
            throw new InvalidOperationException("Circuits stacked in one forward pass must compute the same heads.");
        long T = residPre.shape[1], D = residPre.shape[2];
        var sum = cat(parts.Select(p => p!.Sum.expand(promptsPerCircuit, T, D)).ToArray(), 0);
        return new HeadReplacement(parts[0]!.Computed, parts[0]!.ComputedIndex, sum);
    }

    public HeadInputs? AttentionInputs(int layer, Tensor residPre)
    {
        var slices = Enumerable.Range(0, circuits.Count).Select(c => Slice(residPre, 0, c)).ToArray();
        var parts = circuits.Select((c, i) => c.AttentionInputs(layer, slices[i])).ToArray();
        return parts.All(p => p is null) ? null : new StackedHeadInputs(parts, slices);
    }

    public Tensor? Destination(DestinationSite site, int layer, Tensor current)
    {
        var slices = Enumerable.Range(0, circuits.Count).Select(c => Slice(current, 0, c)).ToArray();
        var parts = circuits.Select((c, i) => c.Destination(site, layer, slices[i])).ToArray();
        return parts.All(p => p is null) ? null : cat(parts.Select((p, i) => p ?? slices[i]).ToArray(), 0);
    }

    public bool KeepsBlockTensors => circuits.Any(c => c.KeepsBlockTensors);
}

/// <summary>
/// The head inputs of a stacked forward pass: per circuit its engine's inputs, or null where every head reads the
/// circuit's residual slice. Each circuit's queries, keys and values are computed as the model computes them in a
/// one-circuit pass (the engine's own projection, the model's dense per-head products, or the shared projection),
/// then joined along the batch.
/// </summary>
internal sealed class StackedHeadInputs(IReadOnlyList<HeadInputs?> parts, IReadOnlyList<Tensor> residual) : HeadInputs
{
    public override int Kinds => parts.Max(p => p?.Kinds ?? 1);

    public override Tensor Dense(int nHeads)
    {
        int kinds = Kinds;
        return cat(parts.Select((p, i) =>
        {
            var dense = p?.Dense(nHeads) ?? residual[i].unsqueeze(0).unsqueeze(0).expand(1, nHeads, residual[i].shape[0], residual[i].shape[1], residual[i].shape[2]);
            return dense.shape[0] == kinds ? dense : dense.expand(kinds, -1, -1, -1, -1);
        }).ToArray(), 2);
    }

    public override QueryKeyValue? Project(AttentionProjection projection)
    {
        var each = parts.Select((p, i) => p is null ? Shared(projection, residual[i]) : p.Project(projection) ?? PerHead(projection, p)).ToArray();
        return new QueryKeyValue(cat(each.Select(e => e.Q).ToArray(), 0), cat(each.Select(e => e.K).ToArray(), 0), cat(each.Select(e => e.V).ToArray(), 0));
    }

    /// <summary>The model's path when nothing patches the heads' inputs: LayerNorm, then one product per Q, K, V.</summary>
    static QueryKeyValue Shared(AttentionProjection p, Tensor resid)
    {
        var x = p.Normalize(resid);
        return new QueryKeyValue(p.ProjectShared(x, 0), p.ProjectShared(x, 1), p.ProjectShared(x, 2));
    }

    /// <summary>The model's dense path: one LayerNorm over every head input, then one batched product per Q, K, V.</summary>
    static QueryKeyValue PerHead(AttentionProjection p, HeadInputs inputs)
    {
        var dense = inputs.Dense(p.NHeads); // [kinds, H, B, T, D]
        int kinds = (int)dense.shape[0], heads = p.NHeads;
        long B = dense.shape[2], T = dense.shape[3];
        var normed = p.Normalize(dense.reshape(kinds * heads, B * T, p.DModel));
        Tensor Project(Tensor xs, int kind) => bmm(xs, p.Weight(kind)).Plus(p.Bias(kind).unsqueeze(1)).view(heads, B, T, p.DHead).permute(1, 2, 0, 3);
        var xq = normed.narrow(0, 0, heads);
        return new QueryKeyValue(Project(xq, 0), Project(kinds == 3 ? normed.narrow(0, heads, heads) : xq, 1), Project(kinds == 3 ? normed.narrow(0, 2 * heads, heads) : xq, 2));
    }
}
