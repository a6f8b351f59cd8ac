using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Workshop;

/// <summary>
/// Notebook 2 (patching by hand): the engine's answer for one edge, and the checks of the hand computations. A check
/// feeds the reader's tensor back into the model with a hook and compares the logits with the patching engine's, so
/// it tests the paper's equation against the engine, not against a second copy of the same formula.
/// </summary>
public static class PatchingExercises
{
    /// <summary>Logits [1, T, V] of the clean prompt with the one edge <paramref name="source"/> → <paramref name="destination"/> resample-ablated by the engine.</summary>
    public static Tensor EngineLogits(IoiLab lab, string source, string destination)
    {
        using var scope = NewDisposeScope();
        var graph = ComputationGraph.Factorized(lab.Model.Config);
        var edge = graph.Edge(source, destination);
        using var masks = PatchMasks.ForEdges(graph, new[] { new CircuitEdge(edge, null) }, lab.Prompts.SeqLen);
        var values = PatchValues.Compute(lab.Model, graph, AblationValue.Resample, PatchDirection.AblateClean, lab.Prompts);
        using var _ = no_grad();
        return Patcher.Run(lab.Model, masks, values, lab.Clean).MoveToOuterDisposeScope();
    }

    /// <summary>Logits of the clean prompt with the activation at <paramref name="hookName"/> replaced by <paramref name="replacement"/>.</summary>
    public static Tensor LogitsWith(IoiLab lab, string hookName, Tensor replacement)
    {
        using var _ = no_grad();
        return lab.Model.Forward(lab.Clean, new HookSet().Replace(hookName, t => replacement.to(t.device).to_type(t.dtype)));
    }

    /// <summary>
    /// Exercise 2.1: the input of <c>Resid End</c> (the last block's <c>hook_resid_post</c>, [1, T, d_model]) with the edge
    /// <c>A{layer}.{head} → Resid End</c> resample-ablated.
    /// </summary>
    public static CheckResult PatchedResidEnd(IoiLab lab, int layer, int head, Tensor? answer)
    {
        const string what = "patchedResidEnd";
        if (answer is null) return CheckResult.NotDone("2.1", $"compute {what} (it is still null)");
        using var scope = NewDisposeScope();
        string resid = HookNames.ResidPost[lab.Model.Config.NLayers - 1], result = HookNames.Result[layer];
        var (clean, corrupt) = Cache(lab, resid, result);
        using var _ = clean;
        using var __ = corrupt;
        if (!answer.shape.SequenceEqual(clean[resid].shape))
            return Check.Tensor("2.1", answer, clean[resid], what, 1e-4, "");
        var engine = EngineLogits(lab, $"A{layer}.{head}", "Resid End");
        Tensor Run(Tensor r) => LogitsWith(lab, resid, r);
        var headClean = clean[result][.., .., head];
        var headCorrupt = corrupt[result][.., .., head];
        return Check.Tensor("2.1", Run(answer), engine, "patchedResidEnd, fed through the model (its logits vs the engine's)", 1e-3,
            "Start from the clean run's residual at Resid End, remove what the head sent on the clean prompt and add what it sends on the corrupt one.",
            new(Run(clean[resid]), "Its logits are the clean run's: the residual is unchanged. Subtract the head's clean output and add its corrupt output."),
            new(Run(corrupt[resid]), "You used the corrupt run's whole residual stream: that patches every edge into Resid End, not one."),
            new(Run(clean[resid] + headClean - headCorrupt), "The signs are reversed: the patched input is clean − head(clean) + head(corrupt)."),
            new(Run(clean[resid] - headClean), "You removed the head's clean output but did not add its corrupt output: that is zero ablation of the edge, not resample ablation."),
            new(Run(clean[resid] - clean[result].sum(2) + corrupt[result].sum(2)), "You patched every head of the layer (summed over dimension 2); index the one head."));
    }

    /// <summary>
    /// Exercise 2.2: layer <paramref name="toLayer"/>'s <c>hook_v_input</c> ([1, T, heads, d_model]) with the edge
    /// <c>A{layer}.{head} → A{toLayer}.{toHead}.V</c> resample-ablated.
    /// </summary>
    public static CheckResult PatchedValueInput(IoiLab lab, int layer, int head, int toLayer, int toHead, Tensor? answer)
    {
        const string what = "patchedVInput";
        if (answer is null) return CheckResult.NotDone("2.2", $"compute {what} (it is still null)");
        using var scope = NewDisposeScope();
        string vInput = HookNames.VInput[toLayer], result = HookNames.Result[layer];
        var (clean, corrupt) = Cache(lab, vInput, result);
        using var _ = clean;
        using var __ = corrupt;
        if (!answer.shape.SequenceEqual(clean[vInput].shape))
            return Check.Tensor("2.2", answer, clean[vInput], what, 1e-4, "");
        var engine = EngineLogits(lab, $"A{layer}.{head}", $"A{toLayer}.{toHead}.V");
        Tensor Run(Tensor v) => LogitsWith(lab, vInput, v);
        var delta = corrupt[result][.., .., head] - clean[result][.., .., head];
        var allHeads = clean[vInput] + delta.unsqueeze(2);
        var reversed = clean[vInput].clone();
        reversed[.., .., toHead] = reversed[.., .., toHead] - delta;
        return Check.Tensor("2.2", Run(answer), engine, "patchedVInput, fed through the model (its logits vs the engine's)", 1e-3,
            $"Copy the clean V input, and in head {toHead}'s slice (dimension 2) remove A{layer}.{head}'s clean output and add its corrupt output.",
            new(Run(clean[vInput]), "Its logits are the clean run's: the V input is unchanged. Did you modify a copy and return the original?"),
            new(Run(allHeads), $"You changed the V input of every head of layer {toLayer}: that patches {lab.Model.Config.NHeads} edges. Change only head {toHead}'s slice."),
            new(Run(reversed), "The signs are reversed: the patched input is clean − source(clean) + source(corrupt)."));
    }

    static (ActivationCache Clean, ActivationCache Corrupt) Cache(IoiLab lab, params string[] names)
    {
        using var _ = no_grad();
        var set = names.ToHashSet();
        var (l1, clean) = lab.Model.RunWithCache(lab.Clean, set.Contains);
        var (l2, corrupt) = lab.Model.RunWithCache(lab.Corrupt, set.Contains);
        l1.Dispose();
        l2.Dispose();
        return (clean, corrupt);
    }
}
