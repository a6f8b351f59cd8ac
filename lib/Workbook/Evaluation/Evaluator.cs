using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Sharding;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Evaluation;

/// <summary>What to evaluate: a model, a task's tokenized prompts, a circuit, methodologies and metrics.</summary>
public sealed record EvaluationRequest
{
    public required HookedTransformer Model { get; init; }
    public required TaskDefinition Task { get; init; }
    /// <summary>The task's dataset parts (IOI: one per template and order), each with prompts of one length.</summary>
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    public required CircuitChoice Circuit { get; init; }
    public required IReadOnlyList<Methodology> Methodologies { get; init; }
    public required IReadOnlyList<MetricKind> Metrics { get; init; }
    /// <summary>Prompts per forward pass; also the "batch" of batch-mean ablation (Fig 4's ABC dataset size).</summary>
    public int BatchSize { get; init; } = 50;
    /// <summary>Progress (prompts evaluated under each methodology); null: <see cref="AmbientProgress.Default"/>, usually nothing.</summary>
    public IProgress<WorkProgress>? Progress { get; init; }
    /// <summary>
    /// Share work between the methodologies (default): each batch's clean run, its patch-source activations and the
    /// dataset means are computed once (see <see cref="EvaluationCache"/>). False computes them per methodology, as a
    /// reference; the rows are the same.
    /// </summary>
    public bool ReuseWork { get; init; } = true;
    /// <summary>The model's name and whether its weights are random, passed on to the result (and its figures); null: not said.</summary>
    public ModelLabel? ModelLabel { get; init; }
    /// <summary>A cache shared with other evaluations of the same model and prompts (the caller disposes it); null: one for this call.</summary>
    public EvaluationCache? Cache { get; init; }
    /// <summary>Evaluate only this shard's <see cref="EvaluationUnits"/> (null: all of them); its rows are exactly those of the whole run.</summary>
    public Shard? Shard { get; init; }
}

/// <summary>
/// Evaluates a circuit under a list of methodologies and returns tidy per-prompt rows. Per dataset part: the
/// unpatched model's outputs on the clean prompts are the reference (logit difference recovered, KL, MSE); dataset
/// means (for mean ablation) are taken over the part's prompts (spec F.5); every methodology then runs the patched
/// model batch by batch and every metric is read from the same patched outputs.
/// </summary>
public static class Evaluator
{
    public static IReadOnlyList<EvaluationRow> Run(EvaluationRequest request) => RunWithBaseline(request).Rows;

    /// <summary>
    /// Like <see cref="Run"/>, and also each metric's value for the unpatched model on every prompt (the "full model"
    /// reference: 100 % logit difference recovered, KL 0, its own answer probability, ...).
    /// </summary>
    public static EvaluationResult RunWithBaseline(EvaluationRequest request)
    {
        if (request.Parts.Count == 0) throw new ArgumentException("There are no prompts to evaluate.");
        if (request.Methodologies.Count == 0) throw new ArgumentException("Give at least one methodology.");
        if (request.Metrics.Count == 0) throw new ArgumentException("Give at least one metric.");
        if (request.BatchSize < 1) throw new ArgumentException($"The batch size must be at least 1, got {request.BatchSize}.");
        foreach (var metric in request.Metrics)
            if (metric.Needs.HasFlag(MetricNeeds.TokenAnswers) && !request.Parts[0].HasTokenAnswers)
                throw new ArgumentException($"Metric '{metric.Label}' needs token answers, but task '{request.Task.Name}' has real-valued targets; use mse or kl.");
        foreach (var m in request.Methodologies) request.Circuit.For(m.Component); // fail before any model run
        // Fail before any model run: means over too few prompts, answers the model cannot output, prompts of unequal length.
        foreach (var part in request.Parts)
        {
            CheckPromptLengths(part);
            CheckAnswerIds(part, request.Model.Config.OutputVocab);
            foreach (var m in request.Methodologies) m.Value.CheckPrompts(part.Name, part.Count, request.BatchSize);
        }

        var units = EvaluationUnits.Enumerate(request.Parts, request.Methodologies.Count, request.BatchSize);
        var range = request.Shard?.Units(units.Count, EvaluationUnits.Description) ?? UnitRange.All(units.Count);
        var owned = units.Where(u => range.Contains(u.Index)).Select(u => (u.Part, u.Methodology, u.Batch)).ToHashSet();

        var model = request.Model;
        if (request.Cache is { } given && !ReferenceEquals(given.Model, model))
            throw new ArgumentException("The activation cache was made for another model than the one evaluated.");
        var cache = request.Cache ?? new EvaluationCache(model, request.ReuseWork);
        bool ownsCache = request.Cache is null;
        bool cacheOwnsTensors = cache.Reuse;
        var rows = new List<EvaluationRow>();
        var baseline = new List<BaselineRow>();
        var progress = new ProgressTracker(Progress.AmbientProgress.Or(request.Progress), "evaluation",
            units.Where(u => range.Contains(u.Index)).Sum(u => (long)u.Prompts), "prompts");
        progress.Start();
        var graphs = new Dictionary<(GraphView, bool), ComputationGraph>();
        ComputationGraph GraphFor(Methodology m) =>
            graphs.TryGetValue((m.View, m.SeparateQkv), out var g) ? g
                : graphs[(m.View, m.SeparateQkv)] = m.View == GraphView.Residual ? ComputationGraph.Residual(model.Config) : ComputationGraph.Factorized(model.Config, m.SeparateQkv);

        try
        {
            for (int p = 0; p < request.Parts.Count; p++)
            {
                int partIndex = p;
                if (!owned.Any(u => u.Part == partIndex)) continue;
                EvaluatePart(request, request.Parts[p], (m, b) => owned.Contains((partIndex, m, b)), cache, cacheOwnsTensors, GraphFor, progress, rows, baseline);
                if (ownsCache) cache.Forget(request.Parts[p]); // nothing else will ask for this part's activations
            }
        }
        finally
        {
            if (ownsCache) cache.Dispose();
        }
        progress.Complete();
        return new EvaluationResult(rows, baseline) { Model = request.ModelLabel };
    }

    /// <summary>
    /// One dataset part: the clean reference, dataset means, then batch by batch every methodology (so that the batch's
    /// recorded patch-source activations serve them all); rows come out methodology by methodology, batch by batch.
    /// <paramref name="owns"/> (methodology, batch) says which units this run (or shard) evaluates.
    /// </summary>
    static void EvaluatePart(EvaluationRequest request, TokenizedDataset part, Func<int, int, bool> owns, EvaluationCache cache, bool cacheOwnsTensors,
        Func<Methodology, ComputationGraph> graphFor, ProgressTracker progress, List<EvaluationRow> rows, List<BaselineRow> baseline)
    {
        var model = request.Model;
        var batches = Batches(part, request.BatchSize, model.Device);
        var reference = new List<Tensor?>();
        IReadOnlyDictionary<GraphView, MeanReference>? means = null;
        try
        {
            // The unpatched outputs of the batches this run evaluates; of every batch when the ratio of means needs the part's mean.
            bool allReferences = request.Metrics.Any(m => m.Needs.HasFlag(MetricNeeds.ModelMeanLogitDiff));
            progress.Working($"clean runs · {part.Name}");
            for (int b = 0; b < batches.Count; b++)
            {
                int batchIndex = b;
                bool needed = allReferences || Enumerable.Range(0, request.Methodologies.Count).Any(m => owns(m, batchIndex));
                reference.Add(needed ? cache.CleanOutputs(new CleanOutputsKey(new BatchKey(part, batches[b].Start, batches[b].Count), request.Task.Read), batches[b].Pair) : null);
            }
            for (int b = 0; b < batches.Count; b++)
            {
                int batchIndex = b;
                if (reference[b] is { } r)
                    PatchingGuards.EnsureFinite(r, () => $"The unpatched model on '{part.Name}', batch {batchIndex + 1} of {batches.Count}", batches[b].Start);
            }
            double? meanModelLogitDiff = allReferences ? MeanLogitDiff(reference, part, batches) : null;
            // The unpatched model's rows go with the first methodology's unit of each batch.
            for (int b = 0; b < batches.Count; b++)
                if (owns(0, b)) AddBaselineRows(baseline, part, batches[b], reference[b]!, request.Metrics, meanModelLogitDiff);

            // Each methodology's graph and circuit, resolved against this part's positions (before any patched run); only the
            // methodologies this run evaluates on some batch of the part.
            var plans = request.Methodologies.Select((m, index) =>
            {
                var graph = graphFor(m);
                var symbolic = request.Circuit.For(m.Component);
                symbolic.CheckGraph(graph);
                return (Index: index, Methodology: m, Graph: graph, Circuit: symbolic.Resolve(graph, part.Positions, m.Positions));
            }).Where(p => Enumerable.Range(0, batches.Count).Any(b => owns(p.Index, b))).ToList();
            var meanGraphs = plans.Where(p => p.Methodology.Value.Needs.HasFlag(AblationNeeds.DatasetMeans))
                .Select(p => p.Graph).DistinctBy(g => g.View).ToList();
            // Views whose sources the grid records on each batch (resample and batch means), recorded in one pass.
            var recordedPlans = plans.Where(p => p.Methodology.Value.ComputedFromPairedRecording).ToList();
            var recordedViews = recordedPlans.Select(p => p.Graph).DistinctBy(g => g.View).ToList();
            if (meanGraphs.Count > 0)
            {
                // Over every prompt of the part, whichever batches this run evaluates: a shard's means are the whole run's. The
                // pass runs the prompts the recordings need too, so it takes them along for the batches this run evaluates.
                progress.Working($"dataset means · {part.Name}");
                var ahead = new EvaluationCache.RecordingsAhead(recordedViews, (b, side) =>
                    recordedPlans.Any(p => EvaluationCache.RecordedSide(p.Methodology.Direction) == side && owns(p.Index, b)));
                means = cache.Means(part, request.BatchSize, meanGraphs, batches.Select(b => b.Pair).ToList(), MeanAblation.SidesFor(plans.Select(p => p.Methodology.Value)),
                    done => progress.Working($"dataset means · {part.Name} · batch {done}/{batches.Count}"), ahead);
            }

            var perMethodology = plans.Select(_ => new List<EvaluationRow>()).ToList();
            for (int b = 0; b < batches.Count; b++)
            {
                var batch = batches[b];
                var key = new BatchKey(part, batch.Start, batch.Count);
                for (int m = 0; m < plans.Count; m++)
                {
                    var (methodologyIndex, methodology, graph, circuit) = plans[m];
                    if (!owns(methodologyIndex, b)) continue;
                    using (var scope = NewDisposeScope())
                    {
                        var meanReference = means is not null && means.TryGetValue(graph.View, out var r) ? r : null;
                        int prefix = methodology.NeverPatchedPrefix ?? part.SharedPrefix;
                        var values = cache.Values(key, batch.Pair, graph, methodology, recordedViews, meanReference, prefix);
                        var logits = CircuitPatching.PatchedLogits(model, circuit, methodology, batch.Pair, values, part.SharedPrefix,
                            lastPositionOnly: request.Task.Read == ReadPositions.Last);
                        var outputs = FaithfulnessMetrics.ReadOutputs(logits, request.Task.Read);
                        PatchingGuards.EnsureFinite(outputs, () => $"Methodology {methodology.Label} on '{part.Name}', batch {b + 1} of {batches.Count}", batch.Start);
                        AddRows(perMethodology[m], request.Task.Name, part, batch, methodology, request.Metrics, outputs, reference[b]!, meanModelLogitDiff);
                    }
                    progress.Advance(batch.Count, $"{methodology.Label} · {part.Name}");
                }
                cache.ForgetRecordings(key);
            }
            foreach (var list in perMethodology) rows.AddRange(list);
        }
        finally
        {
            if (!cacheOwnsTensors)
            {
                foreach (var r in reference) r?.Dispose();
                if (means is not null) foreach (var m in means.Values) m.Dispose();
            }
            foreach (var b in batches) b.Dispose();
        }
    }

    /// <summary>The unpatched model's rows of one batch: each metric of its outputs against themselves.</summary>
    internal static void AddBaselineRows(List<BaselineRow> baseline, TokenizedDataset part, Batch batch, Tensor reference,
        IReadOnlyList<MetricKind> metrics, double? meanModelLogitDiff)
    {
        var targets = MetricTargets.For(part, batch.Start, batch.Count, (int)reference.shape[1]);
        foreach (var metric in metrics)
        {
            var values = FaithfulnessMetrics.PerPrompt(metric, reference, reference, targets, meanModelLogitDiff);
            for (int i = 0; i < values.Length; i++) baseline.Add(new BaselineRow(part.Name, batch.Start + i, metric, values[i]));
        }
    }

    /// <summary>Each metric's per-prompt rows of one batch's patched outputs, measured against the unpatched ones.</summary>
    internal static void AddRows(List<EvaluationRow> rows, string task, TokenizedDataset part, Batch batch, Methodology methodology,
        IReadOnlyList<MetricKind> metrics, Tensor outputs, Tensor reference, double? meanModelLogitDiff)
    {
        var targets = MetricTargets.For(part, batch.Start, batch.Count, (int)outputs.shape[1]);
        foreach (var metric in metrics)
        {
            var values = FaithfulnessMetrics.PerPrompt(metric, outputs, reference, targets, meanModelLogitDiff);
            for (int i = 0; i < values.Length; i++) rows.Add(new EvaluationRow(task, part.Name, batch.Start + i, methodology, metric, values[i]));
        }
    }

    /// <summary>One batch of prompt pairs with its position in the part.</summary>
    internal sealed record Batch(int Start, int Count, PromptPair Pair) : IDisposable
    {
        public void Dispose()
        {
            Pair.Clean.Dispose();
            Pair.Corrupt.Dispose();
        }
    }

    /// <summary>Every clean and corrupt prompt of a part has the part's length (a batch is a rectangle: no padding, no truncation).</summary>
    internal static void CheckPromptLengths(TokenizedDataset part)
    {
        for (int i = 0; i < part.Count; i++)
        {
            if (part.Clean[i].Length != part.SeqLen)
                throw new ArgumentException($"'{part.Name}', prompt {i}: the clean prompt is {part.Clean[i].Length} tokens but prompt 0 is {part.SeqLen}; every prompt of a batch must have the same length.");
            if (part.Corrupt[i].Length != part.SeqLen)
                throw new ArgumentException($"'{part.Name}', prompt {i}: the corrupt prompt is {part.Corrupt[i].Length} tokens but the clean prompts are {part.SeqLen}; clean and corrupt prompts must have the same length.");
        }
    }

    /// <summary>Answer token ids exist in the model's output vocabulary (else a metric would index past the logits).</summary>
    internal static void CheckAnswerIds(TokenizedDataset part, int vocabulary)
    {
        void Check(IReadOnlyList<int[]>? ids, string what)
        {
            if (ids is null) return;
            for (int i = 0; i < ids.Count; i++)
                foreach (int id in ids[i])
                    if (id < 0 || id >= vocabulary)
                        throw new ArgumentException($"'{part.Name}', prompt {i}: {what} token id {id} is outside the model's output vocabulary of {vocabulary}.");
        }
        Check(part.AnswerIds, "answer");
        Check(part.WrongAnswerIds, "wrong answer");
        if (!part.TargetsAreTokenIds) return;
        Check(part.AnswerValues?.Select(p => p.SelectMany(v => v).Select(v => (int)v).ToArray()).ToArray(), "answer");
        Check(part.WrongAnswerValues?.Select(p => p.SelectMany(v => v).Select(v => (int)v).ToArray()).ToArray(), "wrong answer");
    }

    internal static List<Batch> Batches(TokenizedDataset part, int batchSize, Device device)
    {
        var result = new List<Batch>();
        for (int start = 0; start < part.Count; start += batchSize)
        {
            int count = Math.Min(batchSize, part.Count - start);
            var clean = new long[count, part.SeqLen];
            var corrupt = new long[count, part.SeqLen];
            for (int i = 0; i < count; i++)
                for (int t = 0; t < part.SeqLen; t++)
                {
                    clean[i, t] = part.Clean[start + i][t];
                    corrupt[i, t] = part.Corrupt[start + i][t];
                }
            var pair = new PromptPair(tensor(clean, device: device).DetachFromDisposeScope(), tensor(corrupt, device: device).DetachFromDisposeScope());
            result.Add(new Batch(start, count, pair));
        }
        return result;
    }

    internal static double MeanLogitDiff(List<Tensor?> reference, TokenizedDataset part, List<Batch> batches)
    {
        double sum = 0;
        for (int b = 0; b < batches.Count; b++)
        {
            var targets = MetricTargets.For(part, batches[b].Start, batches[b].Count, (int)reference[b]!.shape[1]);
            sum += FaithfulnessMetrics.PerPrompt(MetricKind.LogitDiff, reference[b]!, reference[b]!, targets).Sum();
        }
        double mean = sum / part.Count;
        if (mean == 0) throw new ArgumentException($"The model's mean logit difference on '{part.Name}' is exactly 0; the ratio of means is undefined.");
        return mean;
    }
}
