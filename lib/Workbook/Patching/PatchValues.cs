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
        return graphs.Select((g, i) => new MeanReference(g, cleanSums[i]!.DividedBy(count).to(model.DType), corruptSums[i]!.DividedBy(count).to(model.DType), count)).ToList();
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
    /// Computes patch values for <paramref name="value"/> and <paramref name="direction"/> (see <see cref="AblationValue.Compute"/>):
    /// resample uses the paired prompt, batch means the batch's paired prompts, dataset means <paramref name="means"/>,
    /// noise a run of the input prompts with noisy embeddings.
    /// </summary>
    public static PatchValues Compute(HookedTransformer model, ComputationGraph graph, AblationValue value, PatchDirection direction,
        PromptPair batch, MeanReference? means = null, int neverPatchedPrefix = 0) =>
        value.Compute(new AblationContext { Model = model, Graph = graph, Batch = batch, Direction = direction, Means = means, NeverPatchedPrefix = neverPatchedPrefix });
}
