using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Evaluation;

/// <summary>A batch of a dataset part: its first prompt and its size (the same prompts, whatever tensors hold them).</summary>
public sealed record BatchKey(TokenizedDataset Part, int Start, int Count);

/// <summary>The unpatched model's outputs at the read positions for one batch's clean prompts.</summary>
public sealed record CleanOutputsKey(BatchKey Batch, ReadPositions Read);

/// <summary>Every source's output (one graph view) when one side of a batch (clean or corrupt prompts) runs unpatched.</summary>
public sealed record RecordingKey(BatchKey Batch, GraphView View, PromptSide Side);

/// <summary>Dataset means of one graph view's sources over a part's prompts, taken batch by batch.</summary>
public sealed record MeansKey(TokenizedDataset Part, GraphView View, int BatchSize);

/// <summary>Which prompts of a pair.</summary>
public enum PromptSide { Clean, Corrupt }

/// <summary>What an <see cref="EvaluationCache"/> has run and reused (forward passes counted per batch, not per prompt).</summary>
public sealed record EvaluationCacheStatistics
{
    public int CleanRuns { get; init; }
    public int Recordings { get; init; }
    /// <summary>Forward passes spent on dataset means (per batch, one for each prompt side the means average).</summary>
    public int MeanPasses { get; init; }
    /// <summary>Batch recordings taken along by a mean pass (no forward pass of their own).</summary>
    public int RecordingsWithMeans { get; init; }
    public int Reused { get; init; }
}

/// <summary>
/// Work that the methodologies of a grid share, done once and kept on the model's device: the unpatched clean run of
/// each batch, the source outputs of each batch's patch-source prompts (one forward pass records both graph views;
/// every resample and batch-mean methodology on that batch reads it), and dataset means (one pass over a part for
/// both views). Keys are typed records of the prompts, view and side. Recordings are kept for the current batch only
/// (a grid runs every methodology on a batch before the next), so memory stays one batch's worth; clean outputs and
/// means, which are small, are kept for the cache's life, so a caller that runs several evaluations on the same
/// prompts (Figure 10: the circuit, then the ablated model) can share them by passing one cache to each.
/// With <c>reuse: false</c> nothing is kept and every request is computed afresh, as each methodology did on its own
/// before: the reference that reuse is measured and tested against.
/// </summary>
public sealed class EvaluationCache : IDisposable
{
    readonly Dictionary<CleanOutputsKey, Tensor> _clean = new();
    readonly Dictionary<MeansKey, MeanReference> _means = new();
    // Means replaced by ones over more prompt sides; an evaluation may still hold them, so they live as long as their part.
    readonly List<(TokenizedDataset Part, MeanReference Means)> _replacedMeans = new();
    readonly Dictionary<RecordingKey, Tensor> _recordings = new();
    BatchKey? _recordedBatch;
    // Recordings taken along by a mean pass for batches not yet evaluated: kept until their batch is done.
    readonly HashSet<BatchKey> _recordedAhead = new();
    EvaluationCacheStatistics _stats = new();

    public EvaluationCache(HookedTransformer model, bool reuse = true)
    {
        Model = model;
        Reuse = reuse;
    }

    public HookedTransformer Model { get; }
    public bool Reuse { get; }

    /// <summary>
    /// How many bytes of patch-source recordings a part's mean pass may take along for the batches after it (default 2 GiB;
    /// 0: none). The mean pass runs the same unpatched forward as a batch's recording, so each recording kept spares one
    /// forward pass per batch; when the recordings of a part do not all fit, the first batches' are kept and the rest
    /// recorded as their batch comes. Figure 3 on GPT-2 small: 2 × 0.83 GB per part.
    /// </summary>
    public long KeptRecordingBytes { get; init; } = 2L << 30;
    public EvaluationCacheStatistics Statistics => _stats;

    /// <summary>The read outputs of the unpatched model on <paramref name="key"/>'s clean prompts (owned by the cache when reusing; else by the caller).</summary>
    internal Tensor CleanOutputs(CleanOutputsKey key, PromptPair batch)
    {
        if (Reuse && _clean.TryGetValue(key, out var kept))
        {
            _stats = _stats with { Reused = _stats.Reused + 1 };
            return kept;
        }
        Tensor outputs;
        using (no_grad())
        using (var scope = NewDisposeScope())
            outputs = FaithfulnessMetrics.ReadOutputs(Model.Forward(batch.Clean, null, key.Read == ReadPositions.Last ? new LastPositionOnly() : null), key.Read)
                .contiguous().DetachFromDisposeScope();
        _stats = _stats with { CleanRuns = _stats.CleanRuns + 1 };
        if (Reuse) _clean[key] = outputs;
        return outputs;
    }

    /// <summary>
    /// Dataset means for each graph in <paramref name="graphs"/> over <paramref name="batches"/> of <paramref name="part"/>:
    /// the views not yet known are computed together in one pass. Owned by the cache when reusing; else by the caller.
    /// </summary>
    internal IReadOnlyDictionary<GraphView, MeanReference> Means(TokenizedDataset part, int batchSize, IReadOnlyList<ComputationGraph> graphs,
        IReadOnlyList<PromptPair> batches, MeanSides sides, Action<int>? afterBatch = null, RecordingsAhead? ahead = null)
    {
        var result = new Dictionary<GraphView, MeanReference>();
        var missing = new List<ComputationGraph>();
        var sidesToCompute = sides;
        foreach (var g in graphs)
        {
            if (Reuse && _means.TryGetValue(new MeansKey(part, g.View, batchSize), out var kept))
            {
                if ((kept.Sides & sides) == sides)
                {
                    result[g.View] = kept;
                    _stats = _stats with { Reused = _stats.Reused + 1 };
                    continue;
                }
                sidesToCompute |= kept.Sides; // computed again with both sides; the narrower one is dropped with the part
            }
            missing.Add(g);
        }
        if (missing.Count == 0) return result;
        // Without reuse each view makes its own pass, as separate evaluations did.
        var groups = Reuse ? new[] { (IReadOnlyList<ComputationGraph>)missing } : missing.Select(g => (IReadOnlyList<ComputationGraph>)new[] { g }).ToArray();
        foreach (var group in groups)
        {
            var computed = MeanReference.Compute(Model, group, batches, afterBatch, sidesToCompute, Reuse && ahead is not null ? Along(part, batches, ahead) : null);
            for (int i = 0; i < group.Count; i++)
            {
                result[group[i].View] = computed[i];
                if (!Reuse) continue;
                var key = new MeansKey(part, group[i].View, batchSize);
                if (_means.Remove(key, out var narrower)) _replacedMeans.Add((part, narrower));
                _means[key] = computed[i];
            }
            int passesPerBatch = (sidesToCompute.HasFlag(MeanSides.Clean) ? 1 : 0) + (sidesToCompute.HasFlag(MeanSides.Corrupt) ? 1 : 0);
            _stats = _stats with { MeanPasses = _stats.MeanPasses + passesPerBatch * batches.Count };
        }
        return result;
    }

    /// <summary>
    /// Which batch recordings a grid will ask <see cref="Values"/> for: the views it records (resample and batch means), and
    /// for a batch index and prompt side whether some methodology this run evaluates records that side of that batch.
    /// </summary>
    internal sealed record RecordingsAhead(IReadOnlyList<ComputationGraph> Views, Func<int, PromptSide, bool> Wanted);

    /// <summary>The prompt side of one side of a mean pass (it runs one at a time).</summary>
    static PromptSide SideOf(MeanSides side) => side == MeanSides.Clean ? PromptSide.Clean : PromptSide.Corrupt;

    /// <summary>The recordings a part's mean pass takes along, within <see cref="KeptRecordingBytes"/>, stored as <see cref="Values"/> would store them.</summary>
    RecordedAlong? Along(TokenizedDataset part, IReadOnlyList<PromptPair> batches, RecordingsAhead ahead)
    {
        if (ahead.Views.Count == 0 || KeptRecordingBytes <= 0) return null;
        long bytesPerPrompt = ahead.Views.Sum(v => (long)v.Sources.Count) * part.SeqLen * Model.Config.DModel * Model.embed.W_E.ElementSize;
        long budget = KeptRecordingBytes;
        var starts = new int[batches.Count];
        for (int b = 1; b < batches.Count; b++) starts[b] = starts[b - 1] + (int)batches[b - 1].BatchSize;
        return new RecordedAlong(
            (b, side) =>
            {
                long bytes = bytesPerPrompt * batches[b].BatchSize;
                if (!ahead.Wanted(b, SideOf(side)) || bytes > budget) return null;
                budget -= bytes;
                return ahead.Views;
            },
            (b, side, recordings) =>
            {
                var key = new BatchKey(part, starts[b], (int)batches[b].BatchSize);
                var promptSide = SideOf(side);
                for (int i = 0; i < ahead.Views.Count; i++)
                {
                    var recordingKey = new RecordingKey(key, ahead.Views[i].View, promptSide);
                    if (_recordings.Remove(recordingKey, out var old)) old.Dispose();
                    _recordings[recordingKey] = recordings[i].DetachFromDisposeScope();
                }
                _recordedAhead.Add(key);
                _stats = _stats with { RecordingsWithMeans = _stats.RecordingsWithMeans + 1 };
            });
    }

    /// <summary>
    /// The patch values of <paramref name="methodology"/> for one batch, in the caller's dispose scope (recordings and
    /// means the cache keeps are borrowed, never copied: the caller must not dispose them). <paramref name="views"/> are all
    /// the graph views the grid records on this batch, so that one forward pass records them together.
    /// </summary>
    internal PatchValues Values(BatchKey key, PromptPair batch, ComputationGraph graph, Methodology methodology, IReadOnlyList<ComputationGraph> views,
        MeanReference? means, int prefix)
    {
        var value = methodology.Value;
        bool recorded = value.ComputedFromPairedRecording;
        if (!Reuse || !recorded)
        {
            if (recorded) _stats = _stats with { Recordings = _stats.Recordings + 1 };
            return PatchValues.Compute(Model, graph, value, methodology.Direction, batch, means, prefix);
        }
        var side = RecordedSide(methodology.Direction);
        var recordingKey = new RecordingKey(key, graph.View, side);
        if (_recordedBatch != key)
        {
            // Only one batch's own recordings at a time; those taken ahead by a mean pass stay for their batch.
            if (_recordedBatch is { } previous && !_recordedAhead.Contains(previous)) ForgetRecordings(previous);
            _recordedBatch = key;
        }
        if (!_recordings.TryGetValue(recordingKey, out var sources))
        {
            var outputs = SourceRecorderSet.Record(Model, views, batch.Other(methodology.Direction));
            for (int i = 0; i < views.Count; i++)
                _recordings[new RecordingKey(key, views[i].View, side)] = outputs[i].DetachFromDisposeScope();
            sources = _recordings[recordingKey];
            _stats = _stats with { Recordings = _stats.Recordings + 1 };
        }
        else _stats = _stats with { Reused = _stats.Reused + 1 };
        return value.FromPairedRecording(sources);
    }

    /// <summary>The prompts whose sources a recorded ablation (resample, batch mean) patches in: the other side of the input.</summary>
    internal static PromptSide RecordedSide(PatchDirection direction) => direction == PatchDirection.AblateClean ? PromptSide.Corrupt : PromptSide.Clean;

    /// <summary>Drops what the cache keeps about <paramref name="part"/> (an evaluation that owns its cache does this after each part).</summary>
    public void Forget(TokenizedDataset part)
    {
        foreach (var k in _clean.Keys.Where(k => ReferenceEquals(k.Batch.Part, part)).ToList())
        {
            _clean[k].Dispose();
            _clean.Remove(k);
        }
        foreach (var k in _means.Keys.Where(k => ReferenceEquals(k.Part, part)).ToList())
        {
            _means[k].Dispose();
            _means.Remove(k);
        }
        foreach (var r in _replacedMeans.Where(r => ReferenceEquals(r.Part, part)).ToList())
        {
            r.Means.Dispose();
            _replacedMeans.Remove(r);
        }
        foreach (var b in _recordings.Keys.Select(k => k.Batch).Where(b => ReferenceEquals(b.Part, part)).Distinct().ToList()) ForgetRecordings(b);
    }

    /// <summary>Drops every batch's recordings.</summary>
    public void ForgetRecordings()
    {
        foreach (var t in _recordings.Values) t.Dispose();
        _recordings.Clear();
        _recordedAhead.Clear();
        _recordedBatch = null;
    }

    /// <summary>Drops one batch's recordings (the grid is done with that batch).</summary>
    public void ForgetRecordings(BatchKey batch)
    {
        foreach (var k in _recordings.Keys.Where(k => k.Batch == batch).ToList())
        {
            _recordings[k].Dispose();
            _recordings.Remove(k);
        }
        _recordedAhead.Remove(batch);
        if (_recordedBatch == batch) _recordedBatch = null;
    }

    public void Dispose()
    {
        ForgetRecordings();
        foreach (var t in _clean.Values) t.Dispose();
        foreach (var m in _means.Values.Concat(_replacedMeans.Select(r => r.Means))) m.Dispose();
        _clean.Clear();
        _means.Clear();
        _replacedMeans.Clear();
    }
}
