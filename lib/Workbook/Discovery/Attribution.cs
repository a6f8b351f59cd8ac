using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;

namespace Workbook.Discovery;

/// <summary>
/// Gradient-based scores from the engine's dedicated attribution path (<see cref="EdgeAttribution"/>), one clean forward
/// and one backward pass per batch (spec A.5 "HISP"): input = clean prompts, patch values from the corrupt prompts by
/// default, gradient of the loss at mask 0.
/// <list type="bullet">
/// <item><c>eap</c>: the gradient of the mean loss over all prompts with one mask shared by them (signed), i.e.
/// AutoCircuit's <c>mask_gradient_prune_scores</c> with <c>mask_val = 0</c>.</item>
/// <item><c>hisp</c>: per prompt, the gradient of that prompt's loss with respect to a mask of its own; then the mean of
/// their absolute values (Michel et al.'s head importance, on edges). |eap| ≤ hisp edge by edge.</item>
/// </list>
/// </summary>
internal static class Attribution
{
    /// <summary>
    /// Each batch's contribution to the scores, in <see cref="DiscoveryData.Batches"/> order: Σ over its prompts of the
    /// loss gradient (EAP: the batch's summed loss, one mask; HISP: Σ_p |∂loss_p/∂mask_p|). <see cref="Reduce"/> turns
    /// the contributions of every batch into scores; batches are independent, so they can come from different shards.
    /// </summary>
    public static IReadOnlyList<double[]> Contributions(HookedTransformer model, ComputationGraph graph, DiscoveryData data, IReadOnlyList<PatchValues> values,
        DiscoveryTarget target, bool perPromptAbsolute, IProgress<WorkProgress>? progress)
    {
        var result = new List<double[]>();
        var tracker = new ProgressTracker(progress, perPromptAbsolute ? "HISP" : "EAP", data.PromptCount, "prompts");
        tracker.Start();
        for (int b = 0; b < data.Batches.Count; b++)
        {
            var batch = data.Batches[b];
            var grads = EdgeAttribution.Compute(model, graph, values[b], batch.Pair.Clean,
                logits => data.PerPromptLoss(target, logits, batch), batch.Prefix, perPrompt: perPromptAbsolute);
            var contribution = new double[graph.EdgeCount];
            if (perPromptAbsolute)
            {
                for (int p = 0; p < batch.Count; p++)
                    for (int e = 0; e < contribution.Length; e++) contribution[e] += Math.Abs(grads.PerPrompt![p, e]);
            }
            else
            {
                for (int e = 0; e < contribution.Length; e++) contribution[e] = grads.Total[e];
            }
            result.Add(contribution);
            tracker.Advance(batch.Count, $"batch {b + 1} of {data.Batches.Count}");
        }
        return result;
    }

    /// <summary>
    /// The scores from every batch's contribution, summed in batch order (one fixed order, so a run split into shards
    /// adds the same numbers in the same order as an unsplit one) and divided by the number of prompts: each prompt's
    /// loss entered with weight 1, and the loss the paper differentiates is the mean over prompts.
    /// </summary>
    public static double[] Reduce(IEnumerable<double[]> contributions, int edgeCount, int promptCount)
    {
        var scores = new double[edgeCount];
        foreach (var c in contributions)
        {
            if (c.Length != edgeCount) throw new ArgumentException($"A batch contributes {c.Length} scores, but the graph has {edgeCount} edges.");
            for (int e = 0; e < edgeCount; e++) scores[e] += c[e];
        }
        for (int e = 0; e < edgeCount; e++) scores[e] /= promptCount;
        return scores;
    }
}
