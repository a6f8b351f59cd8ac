using TorchSharp;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Discovery;

/// <summary>One batch of a discovery run: its prompts, the unpatched model's clean outputs and the answers.</summary>
internal sealed class DiscoveryBatch : IDisposable
{
    public required PromptPair Pair { get; init; }
    /// <summary>The unpatched model's read outputs on the clean prompts, [B, P, V], float64, no gradient.</summary>
    public required Tensor CleanOutputs { get; init; }
    public required MetricTargets Targets { get; init; }
    /// <summary>Numeric answers [B, P, k] (float64) for tasks with real-valued targets, else null.</summary>
    public Tensor? Answers { get; init; }
    /// <summary>Positions before this one are never patched (the task's shared prefix).</summary>
    public int Prefix { get; init; }
    /// <summary>Which dataset part the batch comes from (dataset means are taken per part, as in evaluation).</summary>
    public int Part { get; init; }
    /// <summary>The batch's place among all batches of the run (parts in order, then batches within a part).</summary>
    public int Index { get; init; }
    /// <summary>The index of the batch's first prompt in its part.</summary>
    public int FirstPrompt { get; init; }
    public int Count => (int)Pair.BatchSize;

    /// <summary>Disposes what the batch computed; its prompts belong to <see cref="DiscoveryData"/>.</summary>
    public void Dispose()
    {
        CleanOutputs.Dispose();
        Answers?.Dispose();
    }
}

/// <summary>
/// A task's prompts prepared for discovery: batches of equal-length prompts (each dataset part batched on its own), the
/// unpatched model's clean outputs, and the losses of <see cref="DiscoveryTarget"/> per prompt (differentiable).
/// </summary>
internal sealed class DiscoveryData : IDisposable
{
    readonly IReadOnlyList<(int Part, PromptPair Pair)> _allPairs;

    /// <summary>The batches this run works on (all of them unless <see cref="Prepare"/> was given a filter), in order.</summary>
    public IReadOnlyList<DiscoveryBatch> Batches { get; }
    public ReadPositions Read { get; }
    /// <summary>The prompts of every batch, included or not: losses and scores are means over all of them.</summary>
    public int PromptCount { get; }
    /// <summary>The number of batches of the whole run, included or not.</summary>
    public int TotalBatches => _allPairs.Count;

    DiscoveryData(IReadOnlyList<DiscoveryBatch> batches, IReadOnlyList<(int Part, PromptPair Pair)> allPairs, ReadPositions read)
    {
        Batches = batches;
        _allPairs = allPairs;
        Read = read;
        PromptCount = allPairs.Sum(p => (int)p.Pair.BatchSize);
    }

    /// <summary>The prompts of every batch of one part (dataset means are taken over all of them, whichever batches a run works on).</summary>
    public IEnumerable<PromptPair> PartPairs(int part) => _allPairs.Where(p => p.Part == part).Select(p => p.Pair);

    /// <summary>The number of batches <see cref="Prepare"/> makes: each part batched on its own.</summary>
    public static int CountBatches(IReadOnlyList<TokenizedDataset> parts, int batchSize) => parts.Sum(p => (p.Count + batchSize - 1) / batchSize);

    /// <summary>
    /// Batches every part and runs the unpatched model on the batches <paramref name="include"/> selects (by batch index;
    /// null: all). The others keep only their prompts, for dataset means.
    /// </summary>
    public static DiscoveryData Prepare(HookedTransformer model, TaskDefinition task, IReadOnlyList<TokenizedDataset> parts, int batchSize, Func<int, bool>? include = null)
    {
        if (parts.Count == 0 || parts.All(p => p.Count == 0)) throw new ArgumentException("There are no prompts to discover a circuit with.");
        if (batchSize < 1) throw new ArgumentException($"The batch size must be at least 1, got {batchSize}.");
        var batches = new List<DiscoveryBatch>();
        var allPairs = new List<(int Part, PromptPair Pair)>();
        try
        {
            for (int partIndex = 0; partIndex < parts.Count; partIndex++)
            {
                var part = parts[partIndex];
                foreach (var b in Evaluator.Batches(part, batchSize, model.Device))
                {
                    int index = allPairs.Count;
                    allPairs.Add((partIndex, b.Pair));
                    if (include is not null && !include(index)) continue;
                    using var scope = NewDisposeScope();
                    Tensor clean;
                    using (no_grad())
                        clean = FaithfulnessMetrics.ReadOutputs(model.Forward(b.Pair.Clean), task.Read).to(ScalarType.Float64).contiguous();
                    var targets = MetricTargets.For(part, b.Start, b.Count, (int)clean.shape[1]);
                    Tensor? answers = null;
                    if (part.AnswerValues is not null && !part.TargetsAreTokenIds)
                    {
                        int positions = (int)clean.shape[1], k = part.AnswerValues[b.Start][0].Length;
                        var values = new double[b.Count, positions, k];
                        for (int i = 0; i < b.Count; i++)
                        {
                            var a = part.AnswerValues[b.Start + i];
                            if (a.Length != positions)
                                throw new ArgumentException($"Prompt {b.Start + i} of '{part.Name}' has answers for {a.Length} positions but the task reads {positions}.");
                            for (int p = 0; p < positions; p++)
                                for (int j = 0; j < k; j++) values[i, p, j] = a[p][j];
                        }
                        answers = tensor(values, device: model.Device).MoveToOuterDisposeScope();
                    }
                    batches.Add(new DiscoveryBatch
                    {
                        Pair = b.Pair, CleanOutputs = clean.MoveToOuterDisposeScope(), Targets = targets, Answers = answers, Prefix = part.SharedPrefix, Part = partIndex,
                        Index = index, FirstPrompt = b.Start,
                    });
                }
            }
            if (batches.Count == 0) throw new ArgumentException("The filter selects no batch to discover a circuit with.");
            return new DiscoveryData(batches, allPairs, task.Read);
        }
        catch
        {
            foreach (var b in batches) b.Dispose();
            foreach (var (_, pair) in allPairs) DisposePair(pair);
            throw;
        }
    }

    static void DisposePair(PromptPair pair)
    {
        pair.Clean.Dispose();
        pair.Corrupt.Dispose();
    }

    /// <summary>Checks that <paramref name="target"/> applies to these prompts (token answers, numeric answers).</summary>
    public void Check(DiscoveryTarget target)
    {
        var first = Batches[0];
        switch (target)
        {
            case DiscoveryTarget.LogitDiff when first.Targets.Answers is null || first.Targets.WrongAnswers is null:
                throw new ArgumentException("The logit-diff target needs token answers and wrong answers; this task has numeric answers (use mse, mse-answers or kl).");
            case DiscoveryTarget.MseToAnswers when first.Answers is null:
                throw new ArgumentException("The mse-answers target needs numeric answers (Tracr X-Proportion); use kl, mse or logit-diff for this task.");
            case DiscoveryTarget.MseToAnswers when first.Answers.shape[2] != first.CleanOutputs.shape[2]:
                throw new ArgumentException($"The mse-answers target compares {first.CleanOutputs.shape[2]} outputs per position with {first.Answers.shape[2]} answers.");
        }
    }

    /// <summary>
    /// The loss of each prompt of <paramref name="batch"/>, [B] float64, from the logits [B, T, V] of a (patched) run;
    /// differentiable. Averaging it over prompts gives the paper's batch losses (spec A.5: KL and MSE averaged over
    /// prompts × positions, minus the mean logit difference).
    /// </summary>
    public Tensor PerPromptLoss(DiscoveryTarget target, Tensor logits, DiscoveryBatch batch)
    {
        var y = FaithfulnessMetrics.ReadOutputs(logits, Read).to(ScalarType.Float64);
        var clean = batch.CleanOutputs;
        return target switch
        {
            DiscoveryTarget.Kl => Kl(clean, y),
            DiscoveryTarget.Mse => (y - clean).Power(2).mean(new long[] { 1, 2 }),
            DiscoveryTarget.MseToAnswers => (y - batch.Answers!).Power(2).mean(new long[] { 1, 2 }),
            _ => -FaithfulnessMetrics.LogitDiff(y, batch.Targets),
        };
    }

    /// <summary>KL(model ‖ run) per prompt: Σ_v p·(log p − log q) averaged over the read positions.</summary>
    static Tensor Kl(Tensor model, Tensor run)
    {
        var target = model.log_softmax(-1);
        return (target.exp() * (target - run.log_softmax(-1))).sum(-1).mean(new long[] { 1 });
    }

    public void Dispose()
    {
        foreach (var b in Batches) b.Dispose();
        foreach (var (_, pair) in _allPairs) DisposePair(pair);
    }
}
