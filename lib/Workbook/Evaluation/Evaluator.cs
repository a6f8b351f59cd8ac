using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
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
    public IProgress<EvaluationProgress>? Progress { get; init; }
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
            if (metric.NeedsTokenAnswers() && !request.Parts[0].HasTokenAnswers)
                throw new ArgumentException($"Metric '{metric.Name()}' needs token answers, but task '{request.Task.Name}' has real-valued targets; use mse or kl.");
        foreach (var m in request.Methodologies) request.Circuit.For(m.Component); // fail before any model run
        // Fail before any model run: means over too few prompts, answers the model cannot output, prompts of unequal length.
        foreach (var part in request.Parts)
        {
            CheckPromptLengths(part);
            CheckAnswerIds(part, request.Model.Config.OutputVocab);
            int smallestBatch = part.Count % request.BatchSize is var rest && rest > 0 ? Math.Min(rest, request.BatchSize) : Math.Min(part.Count, request.BatchSize);
            foreach (var m in request.Methodologies.Where(m => m.Value.Kind == AblationKind.Mean))
                PatchingGuards.EnsureEnoughPromptsForMean(m.Value, m.Value.MeanOver == MeanOver.Batch ? smallestBatch : part.Count,
                    m.Value.MeanOver == MeanOver.Batch
                        ? $"'{part.Name}' ({part.Count} prompts in batches of {request.BatchSize}, the smallest holding {smallestBatch})"
                        : $"'{part.Name}' ({part.Count} prompts)");
        }

        var units = EvaluationUnits.Enumerate(request.Parts, request.Methodologies.Count, request.BatchSize);
        var range = request.Shard?.Units(units.Count, EvaluationUnits.Description) ?? UnitRange.All(units.Count);
        var owned = units.Where(u => range.Contains(u.Index)).Select(u => (u.Part, u.Methodology, u.Batch)).ToHashSet();

        var model = request.Model;
        var rows = new List<EvaluationRow>();
        var baseline = new List<BaselineRow>();
        int totalSteps = owned.Select(u => (u.Part, u.Methodology)).Distinct().Count(), step = 0;
        var graphs = new Dictionary<(GraphView, bool), ComputationGraph>();
        ComputationGraph GraphFor(Methodology m) =>
            graphs.TryGetValue((m.View, m.SeparateQkv), out var g) ? g
                : graphs[(m.View, m.SeparateQkv)] = m.View == GraphView.Residual ? ComputationGraph.Residual(model.Config) : ComputationGraph.Factorized(model.Config, m.SeparateQkv);

        for (int p = 0; p < request.Parts.Count; p++)
        {
            var part = request.Parts[p];
            int partIndex = p;
            bool Owns(int methodology, int batch) => owned.Contains((partIndex, methodology, batch));
            if (!owned.Any(u => u.Part == partIndex)) continue;
            var batches = Batches(part, request.BatchSize, model.Device);
            // The unpatched outputs of the batches this run evaluates; of every batch when the ratio of means needs the part's mean.
            bool allReferences = request.Metrics.Contains(MetricKind.LogitDiffRecoveredOfMeans);
            var reference = ReferenceOutputs(model, batches, request.Task.Read, b => allReferences || Enumerable.Range(0, request.Methodologies.Count).Any(m => Owns(m, b)));
            for (int b = 0; b < batches.Count; b++)
            {
                int batchIndex = b;
                if (reference[b] is { } r)
                    PatchingGuards.EnsureFinite(r, () => $"The unpatched model on '{part.Name}', batch {batchIndex + 1} of {batches.Count}", batches[b].Start);
            }
            double? meanModelLogitDiff = allReferences ? MeanLogitDiff(reference, part, batches) : null;
            var means = new Dictionary<GraphView, MeanReference>();
            try
            {
                // The unpatched model's rows go with the first methodology's unit of each batch.
                for (int b = 0; b < batches.Count; b++)
                {
                    if (!Owns(0, b)) continue;
                    var targets = MetricTargets.For(part, batches[b].Start, batches[b].Count, (int)reference[b]!.shape[1]);
                    foreach (var metric in request.Metrics)
                    {
                        var values = FaithfulnessMetrics.PerPrompt(metric, reference[b]!, reference[b]!, targets, meanModelLogitDiff);
                        for (int i = 0; i < values.Length; i++) baseline.Add(new BaselineRow(part.Name, batches[b].Start + i, metric, values[i]));
                    }
                }
                for (int m = 0; m < request.Methodologies.Count; m++)
                {
                    var methodology = request.Methodologies[m];
                    int methodologyIndex = m;
                    if (!Enumerable.Range(0, batches.Count).Any(b => Owns(methodologyIndex, b))) continue;
                    step++;
                    var graph = GraphFor(methodology);
                    var symbolic = request.Circuit.For(methodology.Component);
                    symbolic.CheckGraph(graph);
                    var circuit = symbolic.Resolve(graph, part.Positions, methodology.Positions);
                    MeanReference? meanReference = null;
                    if (methodology.Value.Kind == AblationKind.Mean && methodology.Value.MeanOver != MeanOver.Batch)
                    {
                        // Over every prompt of the part, whichever batches this run evaluates: a shard's means are the whole run's.
                        if (!means.TryGetValue(graph.View, out meanReference))
                            means[graph.View] = meanReference = MeanReference.Compute(model, graph, batches.Select(b => b.Pair));
                    }
                    for (int b = 0; b < batches.Count; b++)
                    {
                        if (!Owns(m, b)) continue;
                        request.Progress?.Report(new EvaluationProgress(step, totalSteps, part.Name, methodology.Label, b + 1, batches.Count));
                        using var scope = NewDisposeScope();
                        var batch = batches[b];
                        var logits = CircuitPatching.PatchedLogits(model, circuit, methodology, batch.Pair, meanReference, part.SharedPrefix);
                        var outputs = FaithfulnessMetrics.ReadOutputs(logits, request.Task.Read);
                        PatchingGuards.EnsureFinite(outputs, () => $"Methodology {methodology.Label} on '{part.Name}', batch {b + 1} of {batches.Count}", batch.Start);
                        var targets = MetricTargets.For(part, batch.Start, batch.Count, (int)outputs.shape[1]);
                        foreach (var metric in request.Metrics)
                        {
                            var values = FaithfulnessMetrics.PerPrompt(metric, outputs, reference[b]!, targets, meanModelLogitDiff);
                            for (int i = 0; i < values.Length; i++)
                                rows.Add(new EvaluationRow(request.Task.Name, part.Name, batch.Start + i, methodology, metric, values[i]));
                        }
                    }
                }
            }
            finally
            {
                foreach (var m in means.Values) m.Dispose();
                foreach (var r in reference) r?.Dispose();
                foreach (var b in batches) b.Dispose();
            }
        }
        return new EvaluationResult(rows, baseline);
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
    static void CheckPromptLengths(TokenizedDataset part)
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
    static void CheckAnswerIds(TokenizedDataset part, int vocabulary)
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

    /// <summary>The unpatched model's read outputs on the clean prompts of each batch <paramref name="needed"/> asks for (null for the others).</summary>
    static List<Tensor?> ReferenceOutputs(HookedTransformer model, List<Batch> batches, ReadPositions read, Func<int, bool> needed)
    {
        var result = new List<Tensor?>();
        using var _ = no_grad();
        for (int b = 0; b < batches.Count; b++)
        {
            if (!needed(b))
            {
                result.Add(null);
                continue;
            }
            using var scope = NewDisposeScope();
            result.Add(FaithfulnessMetrics.ReadOutputs(model.Forward(batches[b].Pair.Clean), read).contiguous().DetachFromDisposeScope());
        }
        return result;
    }

    static double MeanLogitDiff(List<Tensor?> reference, TokenizedDataset part, List<Batch> batches)
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
