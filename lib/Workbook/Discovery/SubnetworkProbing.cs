using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using static TorchSharp.torch;

namespace Workbook.Discovery;

/// <summary>Subnetwork probing's training settings (spec A.5: the paper's Tracr experiments).</summary>
public sealed record SubnetworkProbingOptions
{
    public double LearningRate { get; init; } = 0.1;
    public int Epochs { get; init; } = 500;
    /// <summary>Weight of the mask-count penalty (the mean hard-concrete sample over all edges).</summary>
    public double Lambda { get; init; } = 1e-3;
    /// <summary>Initial mask logit: −log 5 ≈ −1.609, i.e. −log(p/(1 − p)) with p = (0.9 + 0.1) / 1.2 (Cao et al.'s constants).</summary>
    public double InitialLogit { get; init; } = -Math.Log(5);
}

/// <summary>
/// Subnetwork probing as the paper runs it (spec A.5, F.16): one learnable logit per edge; each forward samples a
/// hard-concrete mask per prompt, <c>u ~ U(1e-4, 1 − 1e-4)</c>, <c>s = σ((log u − log(1 − u) + logit) / (2/3))</c>,
/// <c>mask = clamp(1.2·s − 0.1, 0, 1)</c>, and runs the <b>corrupt</b> prompts with each edge moved by mask·(patch − current)
/// towards the patch value (by default the token-wise mean over the corrupt prompts: what the paper's code did). Loss =
/// faithfulness + λ · (one more sample of every mask, summed, / number of edges); Adam on the logits, one step per batch and
/// epoch. Score = logit + |smallest logit|, so every score is ≥ 0 and larger means kept more.
/// </summary>
internal static class SubnetworkProbing
{
    const double Low = -0.1, High = 1.1, Temperature = 2.0 / 3.0, Eps = 1e-4;

    public static (double[] Scores, IReadOnlyList<double> Losses) Run(HookedTransformer model, ComputationGraph graph, DiscoveryData data,
        IReadOnlyList<PatchValues> values, DiscoveryTarget target, SubnetworkProbingOptions options, int seed, IProgress<WorkProgress>? progress)
    {
        if (options.Epochs < 0) throw new ArgumentException($"The number of epochs must not be negative, got {options.Epochs}.");
        if (!(options.LearningRate > 0)) throw new ArgumentException($"The learning rate must be positive, got {options.LearningRate}.");
        var sites = PatchSite.For(graph);
        using var outer = NewDisposeScope();
        var logits = sites.Select(s => new TorchSharp.Modules.Parameter(TensorMath.Full(new long[] { s.Rows, s.SourceCount }, options.InitialLogit, ScalarType.Float32, model.Device))).ToList();
        using var optimizer = new Adam(logits, options.LearningRate);
        using var generator = new Generator((ulong)seed, device: CPU);
        var losses = new List<double>();
        var tracker = new ProgressTracker(progress, "subnetwork probing", options.Epochs, "epochs");
        tracker.Start();
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            for (int b = 0; b < data.Batches.Count; b++)
            {
                var batch = data.Batches[b];
                using var scope = NewDisposeScope();
                long B = batch.Pair.BatchSize, T = batch.Pair.SeqLen;
                var positions = batch.Prefix > 0 ? cat(new[] { zeros(batch.Prefix), ones(T - batch.Prefix) }).to(model.Device).view(1, T, 1, 1) : null;
                var sampled = logits.Select(l =>
                {
                    var m = Sample(l, B, generator).unsqueeze(1);                                  // [B, 1, rows, sources]
                    return (Tensor?)(positions is null ? m : m * positions);
                }).ToList();
                var masks = PatchMasks.FromTensors(graph, sampled);
                var output = Patcher.Run(model, masks, values[b], batch.Pair.Corrupt);
                var faith = data.PerPromptLoss(target, output, batch).mean();
                var penalty = cat(logits.Select(l => Sample(l, 1, generator).flatten()).ToArray()).sum().DividedBy(graph.EdgeCount);
                var loss = faith.Plus(penalty.to(ScalarType.Float64).Times(options.Lambda));
                optimizer.ZeroGrad();
                loss.backward();
                optimizer.Step();
                losses.Add(loss.item<double>());
            }
            tracker.Advance(1, $"loss {losses[^1]:G4}");
        }
        var all = new double[graph.EdgeCount];
        double min = double.PositiveInfinity;
        using (no_grad())
        {
            for (int s = 0; s < sites.Count; s++)
            {
                var learned = logits[s].detach().to(ScalarType.Float64).cpu().data<double>().ToArray();
                int n = sites[s].SourceCount;
                for (int r = 0; r < sites[s].Rows; r++)
                {
                    var edges = graph.EdgesInto(sites[s].Destinations[r]);
                    for (int c = 0; c < n; c++)
                    {
                        all[edges[c].Index] = learned[r * n + c];
                        min = Math.Min(min, learned[r * n + c]);
                    }
                }
            }
        }
        for (int e = 0; e < all.Length; e++) all[e] += Math.Abs(min);
        return (all, losses);
    }

    /// <summary>A hard-concrete sample of every logit for each of <paramref name="batch"/> prompts: [batch, rows, sources] in [0, 1].</summary>
    internal static Tensor Sample(Tensor logit, long batch, Generator generator)
    {
        var shape = new long[] { batch }.Concat(logit.shape).ToArray();
        var u = rand(shape, dtype: logit.dtype, generator: generator).Times(1 - 2 * Eps).Plus(Eps).to(logit.device);
        var s = (u.log() - u.SubtractedFrom(1).log()).Plus(logit).DividedBy(Temperature).sigmoid();
        return s.Times(High - Low).Plus(Low).ClampedTo(0.0, 1.0);
    }
}
