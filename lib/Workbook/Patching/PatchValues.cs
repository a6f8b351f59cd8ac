using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// Dataset-level means of every source's output, per token position, over a task's clean prompts, corrupt
/// prompts and both (AutoCircuit's TOKENWISE_MEAN_* ablations). Computed once from all the prompts the
/// evaluation uses, then broadcast to every batch. Shapes [n_sources, 1, seq, d_model].
/// </summary>
public sealed class MeanReference : IDisposable
{
    public Tensor Clean { get; }
    public Tensor Corrupt { get; }
    public Tensor Both { get; }
    public int PromptCount { get; }
    public ComputationGraph Graph { get; }

    MeanReference(ComputationGraph graph, Tensor clean, Tensor corrupt, int count)
    {
        Graph = graph;
        Clean = clean.DetachFromDisposeScope();
        Corrupt = corrupt.DetachFromDisposeScope();
        Both = clean.Plus(corrupt).DividedBy(2).DetachFromDisposeScope();
        PromptCount = count;
    }

    /// <summary>Averages source outputs over every prompt of <paramref name="batches"/> (exact global means).</summary>
    public static MeanReference Compute(HookedTransformer model, ComputationGraph graph, IEnumerable<PromptPair> batches) =>
        Compute(model, new[] { graph }, batches)[0];

    /// <summary>
    /// The means of several graphs' sources (the factorized and the residual view) from one pass over the prompts: each
    /// batch's clean and corrupt prompts run once for all graphs. <paramref name="afterBatch"/> is told the number of
    /// batches done (progress).
    /// </summary>
    public static IReadOnlyList<MeanReference> Compute(HookedTransformer model, IReadOnlyList<ComputationGraph> graphs, IEnumerable<PromptPair> batches,
        Action<int>? afterBatch = null)
    {
        var cleanSums = new Tensor?[graphs.Count];
        var corruptSums = new Tensor?[graphs.Count];
        int count = 0, seq = -1, done = 0;
        using var scope = NewDisposeScope();
        foreach (var batch in batches)
        {
            if (seq >= 0 && batch.SeqLen != seq)
                throw new ArgumentException($"Mean ablation needs prompts of one length: got {seq} and {batch.SeqLen} tokens.");
            seq = batch.SeqLen;
            using var inner = NewDisposeScope();
            var clean = SourceRecorderSet.Record(model, graphs, batch.Clean);
            var corrupt = SourceRecorderSet.Record(model, graphs, batch.Corrupt);
            for (int g = 0; g < graphs.Count; g++)
            {
                var c = clean[g].to(ScalarType.Float64).sum(dim: 1, keepdim: true);
                var k = corrupt[g].to(ScalarType.Float64).sum(dim: 1, keepdim: true);
                cleanSums[g] = cleanSums[g] is null ? c.MoveToOuterDisposeScope() : cleanSums[g]!.Plus(c).MoveToOuterDisposeScope();
                corruptSums[g] = corruptSums[g] is null ? k.MoveToOuterDisposeScope() : corruptSums[g]!.Plus(k).MoveToOuterDisposeScope();
            }
            count += (int)batch.BatchSize;
            afterBatch?.Invoke(++done);
        }
        if (count == 0) throw new ArgumentException("Mean ablation needs at least one prompt.");
        return graphs.Select((g, i) => new MeanReference(g, (cleanSums[i]! / count).to(model.DType), (corruptSums[i]! / count).to(model.DType), count)).ToList();
    }

    public Tensor For(MeanOver over) => over switch
    {
        MeanOver.Clean => Clean,
        MeanOver.Corrupt => Corrupt,
        MeanOver.CleanAndCorrupt => Both,
        _ => throw new ArgumentException($"{over} means are computed per batch, not from a reference set."),
    };

    public void Dispose()
    {
        Clean.Dispose();
        Corrupt.Dispose();
        Both.Dispose();
    }
}

/// <summary>
/// The value each source takes when ablated, for one batch: [n_sources, batch or 1, seq or 1, d_model]
/// (broadcast over the axes of size 1), or null for zero ablation.
/// </summary>
public sealed record PatchValues(Tensor? Values)
{
    public static PatchValues Zero { get; } = new((Tensor?)null);

    /// <summary>
    /// Computes patch values for <paramref name="value"/> and <paramref name="direction"/>. Values come from unpatched
    /// runs (spec 0.5): resample uses the paired prompt, batch means the batch's patch-source prompts,
    /// dataset means <paramref name="means"/>, noise a run of the input prompts with noisy embeddings.
    /// </summary>
    public static PatchValues Compute(HookedTransformer model, ComputationGraph graph, AblationValue value, PatchDirection direction,
        PromptPair batch, MeanReference? means = null, int neverPatchedPrefix = 0)
    {
        switch (value.Kind)
        {
            case AblationKind.Zero:
                return Zero;
            case AblationKind.Resample:
            case AblationKind.Mean when value.MeanOver == MeanOver.Batch:
                if (value.Kind == AblationKind.Mean) PatchingGuards.EnsureEnoughPromptsForMean(value, batch.BatchSize, "This batch");
                return FromRecording(value, SourceRecorder.Record(model, graph, batch.Other(direction)).Sources);
            case AblationKind.Mean:
                return FromMeans(value, graph, means, batch.SeqLen);
            case AblationKind.GaussianNoise:
                return new PatchValues(NoisyRun(model, graph, batch.Input(direction), value, neverPatchedPrefix));
            default:
                throw new NotSupportedException(value.Kind.ToString());
        }
    }

    /// <summary>
    /// Resample and batch-mean values from the recorded sources of the patch-source prompts (<c>batch.Other(direction)</c>),
    /// [S, B, T, D]. Resample values are the recording itself (not a copy: whoever owns the recording owns the values).
    /// </summary>
    public static PatchValues FromRecording(AblationValue value, Tensor recordedSources) => value.Kind switch
    {
        AblationKind.Resample => new PatchValues(recordedSources),
        AblationKind.Mean when value.MeanOver == MeanOver.Batch =>
            new PatchValues(value.Tokenwise ? recordedSources.mean(new long[] { 1 }, keepdim: true) : recordedSources.mean(new long[] { 1, 2 }, keepdim: true)),
        _ => throw new ArgumentException($"{value} values do not come from a recording of the batch's prompts."),
    };

    /// <summary>Dataset-mean values (mean over the clean, corrupt or both prompt sets) from a <see cref="MeanReference"/>, for prompts of <paramref name="seqLen"/> tokens.</summary>
    public static PatchValues FromMeans(AblationValue value, ComputationGraph graph, MeanReference? means, int seqLen)
    {
        if (means is null)
            throw new ArgumentException($"Mean ablation over {value.MeanOver} prompts needs a MeanReference computed from the task's prompts.");
        if (means.Graph.View != graph.View || means.Graph.Sources.Count != graph.Sources.Count)
            throw new ArgumentException("The MeanReference was computed for a different graph.");
        PatchingGuards.EnsureEnoughPromptsForMean(value, means.PromptCount, "The mean reference");
        var m = means.For(value.MeanOver);
        if (value.Tokenwise && m.shape[2] != seqLen)
            throw new ArgumentException($"Token-wise means were computed for {m.shape[2]} positions but the batch has {seqLen}.");
        return new PatchValues(value.Tokenwise ? m.alias() : m.mean(new long[] { 2 }, keepdim: true));
    }

    static Tensor NoisyRun(HookedTransformer model, ComputationGraph graph, Tensor tokens, AblationValue value, int prefix)
    {
        if (value.NoiseScale < 0 || !double.IsFinite(value.NoiseScale))
            throw new ArgumentException($"Noise scale must be a non-negative number, got {value.NoiseScale}.");
        var generator = new Generator((ulong)value.NoiseSeed, device: CPU);
        var hooks = new HookSet().Replace(HookNames.Embed, embed =>
        {
            var std = embed.to(ScalarType.Float64).std().item<double>();
            var noise = randn(embed.shape, dtype: ScalarType.Float32, generator: generator).to(embed.dtype).to(embed.device).Times(value.NoiseScale * std);
            if (prefix > 0) noise[.., ..prefix] = zeros_like(noise[.., ..prefix]);
            return embed.Plus(noise);
        });
        return SourceRecorder.Record(model, graph, tokens, hooks).Sources;
    }
}
