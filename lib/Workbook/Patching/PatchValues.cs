using TorchSharp;
using Workbook.Graph;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>Which prompts of each pair a <see cref="MeanReference"/> averages; a mean over both sides needs both.</summary>
[Flags]
public enum MeanSides
{
    Clean = 1,
    Corrupt = 2,
    CleanAndCorrupt = Clean | Corrupt,
}

/// <summary>
/// Dataset-level means of every source's output, per token position, over a task's clean prompts, corrupt
/// prompts and both (AutoCircuit's TOKENWISE_MEAN_* ablations). Computed once from all the prompts the
/// evaluation uses, then broadcast to every batch. Shapes [n_sources, 1, seq, d_model]. Only the sides asked for are
/// computed (Figure 3's Mean (ABC) needs the corrupt prompts alone): the others are null.
/// </summary>
public sealed class MeanReference : IDisposable
{
    public Tensor? Clean { get; }
    public Tensor? Corrupt { get; }
    public Tensor? Both { get; }
    public MeanSides Sides { get; }
    public int PromptCount { get; }
    public ComputationGraph Graph { get; }

    MeanReference(ComputationGraph graph, Tensor? clean, Tensor? corrupt, int count)
    {
        Graph = graph;
        Clean = clean?.DetachFromDisposeScope();
        Corrupt = corrupt?.DetachFromDisposeScope();
        Both = clean is not null && corrupt is not null ? clean.Plus(corrupt).DividedBy(2).DetachFromDisposeScope() : null;
        Sides = (clean is null ? 0 : MeanSides.Clean) | (corrupt is null ? 0 : MeanSides.Corrupt);
        PromptCount = count;
    }

    /// <summary>Averages source outputs over every prompt of <paramref name="batches"/> (exact global means).</summary>
    public static MeanReference Compute(HookedTransformer model, ComputationGraph graph, IEnumerable<PromptPair> batches,
        MeanSides sides = MeanSides.CleanAndCorrupt) =>
        Compute(model, new[] { graph }, batches, sides: sides)[0];

    /// <summary>
    /// The means of several graphs' sources (the factorized and the residual view) from one pass over the prompts: each
    /// batch's clean and corrupt prompts (those of <paramref name="sides"/>) run once for all graphs, and each source is
    /// summed over the batch in float64 as the pass computes it, so no [sources, batch, seq, d_model] recording is ever
    /// held (at GPT-2 small's 337 sources of both views and 50 prompts that was 0.8 GB per side, plus its float64 copy).
    /// <paramref name="afterBatch"/> is told the number of batches done (progress).
    /// </summary>
    public static IReadOnlyList<MeanReference> Compute(HookedTransformer model, IReadOnlyList<ComputationGraph> graphs, IEnumerable<PromptPair> batches,
        Action<int>? afterBatch = null, MeanSides sides = MeanSides.CleanAndCorrupt) =>
        Compute(model, graphs, batches, afterBatch, sides, recordAlso: null);

    /// <summary>
    /// As above; <paramref name="recordAlso"/>, given a batch's index and prompt side, may name graph views whose source
    /// recordings [n_sources, batch, seq, d_model] the caller wants of that batch anyway (an evaluation's resample values):
    /// that batch side then runs once as a recording, the means are summed from it (the same sums, see
    /// <see cref="SourceSums.AddRecorded"/>), and <see cref="RecordedAlong.Keep"/> receives the recordings, in the caller's dispose scope.
    /// </summary>
    internal static IReadOnlyList<MeanReference> Compute(HookedTransformer model, IReadOnlyList<ComputationGraph> graphs, IEnumerable<PromptPair> batches,
        Action<int>? afterBatch, MeanSides sides, RecordedAlong? recordAlso)
    {
        if (graphs.Count == 0) throw new ArgumentException("Compute the means of at least one graph.");
        if ((sides & MeanSides.CleanAndCorrupt) == 0) throw new ArgumentException("Compute the means of the clean prompts, the corrupt ones or both.");
        using var clean = sides.HasFlag(MeanSides.Clean) ? new SourceSums(graphs) : null;
        using var corrupt = sides.HasFlag(MeanSides.Corrupt) ? new SourceSums(graphs) : null;
        int count = 0, seq = -1, done = 0;
        using var scope = NewDisposeScope();
        void Add(SourceSums? sums, int batch, MeanSides side, Tensor tokens)
        {
            if (sums is null) return;
            var views = recordAlso?.Views(batch, side);
            if (views is null || views.Count == 0)
            {
                sums.Add(model, tokens);
                return;
            }
            var recorded = graphs.Concat(views).DistinctBy(g => g.View).ToList();
            var outputs = SourceRecorderSet.Record(model, recorded, tokens);
            sums.AddRecorded(recorded, outputs);
            recordAlso!.Keep(batch, side, views.Select(v => outputs[recorded.FindIndex(g => g.View == v.View)]).ToList());
        }
        foreach (var batch in batches)
        {
            if (seq >= 0 && batch.SeqLen != seq)
                throw new ArgumentException($"Mean ablation needs prompts of one length: got {seq} and {batch.SeqLen} tokens.");
            seq = batch.SeqLen;
            Add(clean, done, MeanSides.Clean, batch.Clean);
            Add(corrupt, done, MeanSides.Corrupt, batch.Corrupt);
            count += (int)batch.BatchSize;
            afterBatch?.Invoke(++done);
        }
        if (count == 0) throw new ArgumentException("Mean ablation needs at least one prompt.");
        return graphs.Select(g => new MeanReference(g, clean?.Mean(g, count, model.DType), corrupt?.Mean(g, count, model.DType), count)).ToList();
    }

    public Tensor For(MeanOver over) => over switch
    {
        MeanOver.Clean => Clean ?? throw Missing(over),
        MeanOver.Corrupt => Corrupt ?? throw Missing(over),
        MeanOver.CleanAndCorrupt => Both ?? throw Missing(over),
        _ => throw new ArgumentException($"{over} means are computed per batch, not from a reference set."),
    };

    ArgumentException Missing(MeanOver over) =>
        new($"This mean reference averaged the {(Sides == MeanSides.Clean ? "clean" : "corrupt")} prompts only; a mean over {over} prompts needs it computed with MeanSides.{MeanAblation.SidesOf(over)}.");

    public void Dispose()
    {
        Clean?.Dispose();
        Corrupt?.Dispose();
        Both?.Dispose();
    }
}

/// <summary>
/// Recordings a mean pass may take along (<see cref="MeanReference.Compute(HookedTransformer, IReadOnlyList{ComputationGraph}, IEnumerable{PromptPair}, Action{int}?, MeanSides, RecordedAlong?)"/>):
/// <see cref="Views"/> says, for a batch index and one prompt side, which graph views to record (null: none), and
/// <see cref="Keep"/> receives them, one [n_sources, batch, seq, d_model] tensor per view in that order.
/// </summary>
internal sealed record RecordedAlong(Func<int, MeanSides, IReadOnlyList<ComputationGraph>?> Views, Action<int, MeanSides, IReadOnlyList<Tensor>> Keep);

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
