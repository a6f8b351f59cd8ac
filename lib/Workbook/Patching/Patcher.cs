using TorchSharp;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>Runs a model with patched edges. The model is not modified: patches live in this call only.</summary>
public static class Patcher
{
    /// <summary>
    /// One forward pass of <paramref name="input"/> in which every edge selected by <paramref name="masks"/> reads
    /// <paramref name="values"/> in place of its source's current output. Returns logits [B, T, V], or [B, 1, V] at the
    /// last position only when <paramref name="lastPositionOnly"/> (all a last-token metric reads).
    /// </summary>
    public static Tensor Run(HookedTransformer model, PatchMasks masks, PatchValues values, Tensor input, HookSet? hooks = null, bool lastPositionOnly = false)
    {
        Check(model, masks, values, input);
        // Patch values computed elsewhere (a MeanReference from another device, values prepared on the CPU) move to the
        // model's device once here, rather than failing deep inside the forward pass. Masks may live anywhere.
        using var scope = NewDisposeScope();
        if (values.Values is { } pv && !Devices.Same(pv.device, model.Device)) values = new PatchValues(pv.to(model.Device));
        // Hooks would miss heads the engine replaces without computing them: with any, every head is computed.
        var patcher = Interceptor(model, masks, values, replaceHeads: hooks is null && model.AttachedHookScopes == 0);
        if (lastPositionOnly) patcher = new LastPositionOnly(patcher);
        return model.Forward(input, hooks, patcher).MoveToOuterDisposeScope();
    }

    /// <summary>Refuses masks of another model's graph and masks or values that do not fit <paramref name="input"/> [B, T].</summary>
    internal static void Check(HookedTransformer model, PatchMasks masks, PatchValues values, Tensor input)
    {
        var graph = masks.Graph;
        if (graph.Config.NLayers != model.Config.NLayers || graph.Config.NHeads != model.Config.NHeads || graph.Config.HasMlp != model.Config.HasMlp
            || graph.Config.ParallelAttnMlp != model.Config.ParallelAttnMlp)
            throw new ArgumentException($"The patch masks were built for '{graph.Config.Name}', which does not match model '{model.Config.Name}'.");
        if (values.Values is { } v)
        {
            if (v.dim() != 4 || v.shape[0] != graph.Sources.Count || v.shape[3] != model.Config.DModel)
                throw new ArgumentException($"Patch values must be [{graph.Sources.Count} sources, batch, seq, {model.Config.DModel}]; got [{string.Join(", ", v.shape)}].");
            if ((v.shape[1] != 1 && v.shape[1] != input.shape[0]) || (v.shape[2] != 1 && v.shape[2] != input.shape[1]))
                throw new ArgumentException($"Patch values [{string.Join(", ", v.shape)}] do not match the input batch [{string.Join(", ", input.shape)}].");
        }
        foreach (var m in masks.Masks)
        {
            if (m is null) continue;
            if ((m.shape[0] != 1 && m.shape[0] != input.shape[0]) || (m.shape[1] != 1 && m.shape[1] != input.shape[1]))
                throw new ArgumentException($"A patch mask [{string.Join(", ", m.shape)}] does not match the input batch [{string.Join(", ", input.shape)}].");
        }
    }

    /// <summary>
    /// The engine for one circuit's masks on the graph's view; the values must already be on the model's device.
    /// <paramref name="replaceHeads"/>: heads patched everywhere may go uncomputed (only for passes no hook or cache observes).
    /// </summary>
    internal static IForwardInterceptor Interceptor(HookedTransformer model, PatchMasks masks, PatchValues values, bool replaceHeads) =>
        masks.Graph.View == GraphView.Factorized ? new EdgePatcher(masks, values, model.Device, replaceHeads) : new NodePatcher(masks, values, model.Device, replaceHeads);
}

/// <summary>Evaluating a circuit under a methodology in one call: patch values, masks and the patched run.</summary>
public static class CircuitPatching
{
    /// <summary>
    /// Logits [B, T, V] of <paramref name="batch"/> with the edges that <paramref name="methodology"/> selects
    /// (the circuit's complement or the circuit) patched. <paramref name="sharedPrefix"/> is the task's never-patched
    /// prefix, used unless the methodology overrides it.
    /// </summary>
    public static Tensor PatchedLogits(HookedTransformer model, Circuit circuit, Methodology methodology, PromptPair batch,
        MeanReference? means = null, int sharedPrefix = 0)
    {
        int prefix = methodology.NeverPatchedPrefix ?? sharedPrefix;
        using var scope = NewDisposeScope();
        using var masks = PatchMasks.ForCircuit(circuit, methodology, batch.SeqLen, prefix, model.Device);
        PatchingGuards.EnsurePatchesSomething(masks, circuit, methodology, batch.SeqLen, prefix);
        var values = PatchValues.Compute(model, circuit.Graph, methodology.Value, methodology.Direction, batch, means, prefix);
        using var _ = no_grad();
        return Patcher.Run(model, masks, values, batch.Input(methodology.Direction)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Like the overload above, with the patch values already computed (by an <c>EvaluationCache</c> that shares them
    /// between the methodologies of a grid). <paramref name="values"/> must be the values of <paramref name="methodology"/>
    /// for <paramref name="batch"/>; they are only read. <paramref name="lastPositionOnly"/>: logits [B, 1, V] at the last position.
    /// </summary>
    public static Tensor PatchedLogits(HookedTransformer model, Circuit circuit, Methodology methodology, PromptPair batch, PatchValues values, int sharedPrefix = 0,
        bool lastPositionOnly = false)
    {
        int prefix = methodology.NeverPatchedPrefix ?? sharedPrefix;
        using var scope = NewDisposeScope();
        using var masks = PatchMasks.ForCircuit(circuit, methodology, batch.SeqLen, prefix, model.Device);
        PatchingGuards.EnsurePatchesSomething(masks, circuit, methodology, batch.SeqLen, prefix);
        using var _ = no_grad();
        return Patcher.Run(model, masks, values, batch.Input(methodology.Direction), lastPositionOnly: lastPositionOnly).MoveToOuterDisposeScope();
    }
}
