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
    public static MeanReference Compute(HookedTransformer model, ComputationGraph graph, IEnumerable<PromptPair> batches)
    {
        Tensor? cleanSum = null, corruptSum = null;
        int count = 0, seq = -1;
        using var scope = NewDisposeScope();
        foreach (var batch in batches)
        {
            if (seq >= 0 && batch.SeqLen != seq)
                throw new ArgumentException($"Mean ablation needs prompts of one length: got {seq} and {batch.SeqLen} tokens.");
            seq = batch.SeqLen;
            using var inner = NewDisposeScope();
            var (clean, _) = SourceRecorder.Record(model, graph, batch.Clean);
            var (corrupt, _) = SourceRecorder.Record(model, graph, batch.Corrupt);
            var c = clean.to(ScalarType.Float64).sum(dim: 1, keepdim: true);
            var k = corrupt.to(ScalarType.Float64).sum(dim: 1, keepdim: true);
            cleanSum = cleanSum is null ? c.MoveToOuterDisposeScope() : cleanSum.Plus(c).MoveToOuterDisposeScope();
            corruptSum = corruptSum is null ? k.MoveToOuterDisposeScope() : corruptSum.Plus(k).MoveToOuterDisposeScope();
            count += (int)batch.BatchSize;
        }
        if (count == 0) throw new ArgumentException("Mean ablation needs at least one prompt.");
        return new MeanReference(graph, cleanSum!.DividedBy(count).to(model.DType), corruptSum!.DividedBy(count).to(model.DType), count);
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
/// The dataset means of a run (an evaluation, a discovery): computed the first time an ablation value needs them for a
/// dataset part and graph view, then shared by every batch and methodology of that part, and disposed together.
/// </summary>
public sealed class DatasetMeans(HookedTransformer model) : IDisposable
{
    readonly Dictionary<(string Part, GraphView View), MeanReference> _means = new();

    /// <summary>
    /// The means <paramref name="value"/> reads for dataset part <paramref name="part"/> on <paramref name="graph"/>
    /// (averaged over all of <paramref name="batches"/>), or null when it reads none.
    /// </summary>
    public MeanReference? For(AblationValue value, ComputationGraph graph, string part, Func<IEnumerable<PromptPair>> batches)
    {
        if (!value.Needs.HasFlag(AblationNeeds.DatasetMeans)) return null;
        if (!_means.TryGetValue((part, graph.View), out var means))
            _means[(part, graph.View)] = means = MeanReference.Compute(model, graph, batches());
        return means;
    }

    public void Dispose()
    {
        foreach (var m in _means.Values) m.Dispose();
        _means.Clear();
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
