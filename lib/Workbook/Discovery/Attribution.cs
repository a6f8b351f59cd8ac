using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using TorchSharp;
using static TorchSharp.torch;

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
        DiscoveryTarget target, DiscoveryAlgorithm algorithm, int steps, IProgress<WorkProgress>? progress)
    {
        bool perPromptAbsolute = algorithm == DiscoveryAlgorithm.Hisp;
        var result = new List<double[]>();
        var tracker = new ProgressTracker(progress, algorithm.Name().ToUpperInvariant(), data.PromptCount, "prompts");
        tracker.Start();
        for (int b = 0; b < data.Batches.Count; b++)
        {
            var batch = data.Batches[b];
            Func<Tensor, Tensor> loss = logits => data.PerPromptLoss(target, logits, batch);
            var contribution = new double[graph.EdgeCount];
            if (algorithm == DiscoveryAlgorithm.EapIgActivations)
            {
                contribution = IntegratedMaskGradients(model, graph, values[b], batch.Pair.Clean, loss, batch.Prefix, steps);
            }
            else
            {
                var integrate = algorithm == DiscoveryAlgorithm.EapIgInputs ? new InputIntegration(batch.Pair.Corrupt, steps) : null;
                var grads = EdgeAttribution.Compute(model, graph, values[b], batch.Pair.Clean, loss, batch.Prefix, perPrompt: perPromptAbsolute, integrate);
                if (perPromptAbsolute)
                {
                    for (int p = 0; p < batch.Count; p++)
                        for (int e = 0; e < contribution.Length; e++) contribution[e] += Math.Abs(grads.PerPrompt![p, e]);
                }
                else
                {
                    for (int e = 0; e < contribution.Length; e++) contribution[e] = grads.Total[e];
                }
            }
            result.Add(contribution);
            tracker.Advance(batch.Count, $"batch {b + 1} of {data.Batches.Count}");
        }
        return result;
    }

    /// <summary>
    /// EAP-IG over the masks: Σ_k ∂L/∂m_e at every mask = μ_k = 1 − k/m (k = 1..m), divided by m, through the general patching
    /// path (masks that require gradients). Positions before <paramref name="prefix"/> are never patched: their mask entries
    /// are multiplied by 0, so they neither move the run nor receive gradient. μ = 0 is the plain clean run, so one step is EAP.
    /// </summary>
    static double[] IntegratedMaskGradients(HookedTransformer model, ComputationGraph graph, PatchValues values, Tensor input,
        Func<Tensor, Tensor> loss, int prefix, int steps)
    {
        var sites = PatchSite.For(graph);
        var sums = new double[graph.EdgeCount];
        long T = input.shape[1];
        for (int k = 1; k <= steps; k++)
        {
            using var scope = torch.NewDisposeScope();
            double mu = 1.0 - (double)k / steps;
            var leaves = sites.Select(s => TensorMath.Full(new long[] { 1, 1, s.Rows, s.SourceCount }, mu, ScalarType.Float32, model.Device).requires_grad_(true)).ToArray();
            var positions = prefix > 0 ? torch.cat(new[] { torch.zeros(prefix), torch.ones(T - prefix) }).to(model.Device).view(1, T, 1, 1) : null;
            var masks = PatchMasks.FromTensors(graph, leaves.Select(l => (Tensor?)(positions is null ? l : l * positions)).ToList());
            Tensor[] grads;
            using (torch.enable_grad())
            {
                var total = loss(Patcher.Run(model, masks, values, input)).sum();
                grads = torch.autograd.grad(new[] { total }, leaves, allow_unused: true).ToArray();
            }
            for (int s = 0; s < sites.Count; s++)
            {
                if (grads[s] is null || grads[s].IsInvalid) continue;
                var g = grads[s].to(ScalarType.Float64).cpu().data<double>().ToArray();
                int n = sites[s].SourceCount;
                for (int r = 0; r < sites[s].Rows; r++)
                {
                    var edges = graph.EdgesInto(sites[s].Destinations[r]);
                    for (int c = 0; c < n; c++) sums[edges[c].Index] += g[r * n + c];
                }
            }
        }
        for (int e = 0; e < sums.Length; e++) sums[e] /= steps;
        return sums;
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
