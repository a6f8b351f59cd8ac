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
    public static double[] Run(HookedTransformer model, ComputationGraph graph, DiscoveryData data, IReadOnlyList<PatchValues> values,
        DiscoveryTarget target, bool perPromptAbsolute, IProgress<WorkProgress>? progress)
    {
        var scores = new double[graph.EdgeCount];
        var tracker = new ProgressTracker(progress, perPromptAbsolute ? "HISP" : "EAP", data.PromptCount, "prompts");
        tracker.Start();
        for (int b = 0; b < data.Batches.Count; b++)
        {
            var batch = data.Batches[b];
            var grads = EdgeAttribution.Compute(model, graph, values[b], batch.Pair.Clean,
                logits => data.PerPromptLoss(target, logits, batch), batch.Prefix, perPrompt: perPromptAbsolute);
            if (perPromptAbsolute)
            {
                for (int p = 0; p < batch.Count; p++)
                    for (int e = 0; e < scores.Length; e++) scores[e] += Math.Abs(grads.PerPrompt![p, e]);
            }
            else
            {
                for (int e = 0; e < scores.Length; e++) scores[e] += grads.Total[e];
            }
            tracker.Advance(batch.Count, $"batch {b + 1} of {data.Batches.Count}");
        }
        // Each prompt's loss entered with weight 1; the loss the paper differentiates is the mean over prompts.
        for (int e = 0; e < scores.Length; e++) scores[e] /= data.PromptCount;
        return scores;
    }
}
