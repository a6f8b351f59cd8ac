using System.Globalization;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Sharding;
using Workbook.Tasks;

namespace Workbook.Discovery;

/// <summary>What to discover a circuit for, and how.</summary>
public sealed record DiscoveryRequest
{
    public required HookedTransformer Model { get; init; }
    public required TaskDefinition Task { get; init; }
    /// <summary>The task's tokenized prompts (each part is batched on its own: prompts in a batch must share a length).</summary>
    public required IReadOnlyList<TokenizedDataset> Parts { get; init; }
    public DiscoveryAlgorithm Algorithm { get; init; } = DiscoveryAlgorithm.Acdc;
    public SearchSpace Search { get; init; } = SearchSpace.Edge;
    /// <summary>Null: the paper's target for the algorithm and task (<see cref="CircuitDiscovery.DefaultTarget"/>).</summary>
    public DiscoveryTarget? Target { get; init; }
    /// <summary>Null: resample from the corrupt prompts (ACDC, EAP, HISP) or the token-wise mean of the corrupt prompts (SP).</summary>
    public AblationValue? Ablation { get; init; }
    /// <summary>Prompts per forward pass; null: the task's default (Tracr: all 200 in one batch, as the paper).</summary>
    public int? BatchSize { get; init; }
    /// <summary>Recorded in the scores; seeds subnetwork probing's mask samples (the dataset seed is the caller's).</summary>
    public int Seed { get; init; }
    public AcdcOptions Acdc { get; init; } = new();
    /// <summary>EAP-IG: the number of integration steps (Hanna et al. and MIB use 5; 1 is plain EAP).</summary>
    public int IntegratedGradientSteps { get; init; } = DefaultIntegratedGradientSteps;
    /// <summary>The default of <see cref="IntegratedGradientSteps"/>.</summary>
    public const int DefaultIntegratedGradientSteps = 5;
    /// <summary>The most integration steps a run accepts (each step is a forward and a backward pass per batch).</summary>
    public const int MaxIntegratedGradientSteps = 1000;
    public SubnetworkProbingOptions SubnetworkProbing { get; init; } = new();
    /// <summary>The model's name in the scores (default: its config name).</summary>
    public string? ModelName { get; init; }
    /// <summary>
    /// libtorch intra-op threads during the run (restored afterwards); null leaves the setting alone. 1 suits the tiny
    /// Tracr models: their tensors are too small to split, and on a busy machine threads that wait on each other made
    /// subnetwork probing 20-30 times slower.
    /// </summary>
    public int? Threads { get; init; }
    /// <summary>Progress of the search; null: <see cref="AmbientProgress.Default"/>, usually nothing.</summary>
    public IProgress<WorkProgress>? Progress { get; init; }
    /// <summary>Run only this shard's work units (<see cref="DiscoveryUnits"/>; null: all of them).</summary>
    public Shard? Shard { get; init; }
}

/// <summary>
/// Circuit discovery (spec A.5): ACDC, edge attribution patching, subnetwork probing and HISP, each searching edges (the
/// factorized graph) or nodes (the residual graph). Every run returns <see cref="EdgeScores"/> on the factorized graph,
/// the same type whatever the algorithm, so that circuits and ROC curves treat them alike.
/// </summary>
public static class CircuitDiscovery
{
    /// <summary>
    /// The paper's targets (spec A.5): ACDC minimises KL to the model (MSE for numeric answers); SP the same KL (MSE to the
    /// answers for numeric answers); EAP and HISP differentiate minus the logit difference (MSE to the answers).
    /// </summary>
    public static DiscoveryTarget DefaultTarget(DiscoveryAlgorithm algorithm, bool tokenAnswers) => (algorithm, tokenAnswers) switch
    {
        (DiscoveryAlgorithm.Acdc, true) => DiscoveryTarget.Kl,
        (DiscoveryAlgorithm.Acdc, false) => DiscoveryTarget.Mse,
        (DiscoveryAlgorithm.SubnetworkProbing, true) => DiscoveryTarget.Kl,
        (_, true) => DiscoveryTarget.LogitDiff,
        _ => DiscoveryTarget.MseToAnswers,
    };

    /// <summary>Resample ablation from the corrupt prompts, except SP: the token-wise mean of the corrupt prompts (spec F.16).</summary>
    public static AblationValue DefaultAblation(DiscoveryAlgorithm algorithm) =>
        algorithm == DiscoveryAlgorithm.SubnetworkProbing ? AblationValue.Mean(MeanOver.Corrupt) : AblationValue.Resample;

    /// <summary>The graph a search runs on: factorized (with the task's Q/K/V split) for edges, residual for nodes.</summary>
    public static ComputationGraph SearchGraph(TransformerConfig config, TaskDefinition task, SearchSpace search) => SearchGraph(config, task.SeparateQkv, search);

    static ComputationGraph SearchGraph(TransformerConfig config, bool separateQkv, SearchSpace search) =>
        search == SearchSpace.Edge ? ComputationGraph.Factorized(config, separateQkv) : ComputationGraph.Residual(config);

    /// <summary>Runs the whole discovery (<see cref="DiscoveryRequest.Shard"/> must be null): every unit, then <see cref="Combine"/>.</summary>
    public static DiscoveryResult Run(DiscoveryRequest request)
    {
        if (request.Shard is not null) throw new ArgumentException("A sharded discovery gives part of the results: use RunUnits, then Combine the parts of every shard.");
        var partial = RunUnits(request);
        return Combine(partial.Plan, partial.Units);
    }

    /// <summary>Runs the work units of <see cref="DiscoveryRequest.Shard"/> (all units when it is null) and returns their results.</summary>
    public static DiscoveryPartial RunUnits(DiscoveryRequest request)
    {
        if (request.Threads is not { } threads) return RunWithCurrentThreads(request);
        if (threads < 1) throw new ArgumentException($"The number of threads must be at least 1, got {threads}.");
        int previous = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(threads);
        try
        {
            return RunWithCurrentThreads(request);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(previous);
        }
    }

    static DiscoveryPartial RunWithCurrentThreads(DiscoveryRequest request)
    {
        var model = request.Model;
        var task = request.Task;
        var searched = SearchGraph(model.Config, task, request.Search);
        int batchSize = request.BatchSize ?? task.DefaultBatchSize;
        if (batchSize < 1) throw new ArgumentException($"The batch size must be at least 1, got {batchSize}.");
        var kind = DiscoveryUnits.KindOf(request.Algorithm);
        if (kind == DiscoveryUnitKind.Threshold) CircuitStack.CheckRequested(request.Acdc.CircuitsPerForward);
        var taus = request.Acdc.Taus();
        int total = kind switch
        {
            DiscoveryUnitKind.Batch => DiscoveryData.CountBatches(request.Parts, batchSize),
            DiscoveryUnitKind.Threshold => taus.Count,
            _ => 1,
        };
        var range = request.Shard?.Units(total, DiscoveryUnits.Describe(request.Algorithm)) ?? UnitRange.All(total);
        using var data = DiscoveryData.Prepare(model, task, request.Parts, batchSize, kind == DiscoveryUnitKind.Batch ? range.Contains : null);
        bool tokenAnswers = data.Batches[0].Targets.Answers is not null;
        var target = request.Target ?? DefaultTarget(request.Algorithm, tokenAnswers);
        data.Check(target);
        var ablation = request.Ablation ?? DefaultAblation(request.Algorithm);
        if (request.Algorithm.IsIntegratedGradients() && (request.IntegratedGradientSteps < 1 || request.IntegratedGradientSteps > DiscoveryRequest.MaxIntegratedGradientSteps))
            throw new ArgumentException($"The number of integration steps must be between 1 and {DiscoveryRequest.MaxIntegratedGradientSteps}, got {request.IntegratedGradientSteps}.");
        if (request.Algorithm == DiscoveryAlgorithm.EapIgInputs && ablation is not ResampleAblation)
            throw new ArgumentException($"eap-ig-inputs interpolates from the corrupt prompts' embeddings to the clean ones, so it needs resample ablation (got {ablation}); use eap-ig-activations for {ablation}.");
        // SP runs the corrupt prompts and moves edges towards the patch values; the others run the clean prompts and ablate.
        var direction = request.Algorithm == DiscoveryAlgorithm.SubnetworkProbing ? PatchDirection.RestoreCorrupt : PatchDirection.AblateClean;

        // Dataset means are taken over each part's prompts (prompts of different parts may differ in length), once per part,
        // by the same cache evaluation uses.
        using var cache = new EvaluationCache(model);
        var values = new List<PatchValues>();
        try
        {
            foreach (var b in data.Batches)
            {
                var reference = ablation.Needs.HasFlag(AblationNeeds.DatasetMeans)
                    ? cache.Means(request.Parts[b.Part], batchSize, new[] { searched }, data.PartPairs(b.Part).ToList(), MeanAblation.SidesFor(new[] { ablation }))[searched.View] : null;
                using var scope = TorchSharp.torch.NewDisposeScope();
                var v = PatchValues.Compute(model, searched, ablation, direction, b.Pair, reference, b.Prefix);
                // Dataset means are shared by every batch and owned by the cache; anything else is this batch's own.
                values.Add(v.Values is { } t ? new PatchValues(t.clone().DetachFromDisposeScope()) : v);
            }

            var units = new List<DiscoveryUnitResult>();
            AcdcWork? work = null;
            switch (kind)
            {
                case DiscoveryUnitKind.Threshold:
                    var mine = Enumerable.Range(range.Start, range.Count).ToArray();
                    (var runs, work) = Acdc.Run(model, searched, data, values, target, mine.Select(i => taus[i]).ToArray(), AmbientProgress.Or(request.Progress),
                        request.Acdc.CircuitsPerForward);
                    for (int i = 0; i < runs.Count; i++)
                        units.Add(new ThresholdUnitResult(mine[i], runs[i].Tau, runs[i].Removed.Select(e => e.Index).ToArray(), runs[i].Faithfulness));
                    break;
                case DiscoveryUnitKind.Training:
                    var (scores, losses) = SubnetworkProbing.Run(model, searched, data, values, target, request.SubnetworkProbing, request.Seed, AmbientProgress.Or(request.Progress));
                    units.Add(new TrainingUnitResult(0, request.Seed, scores, losses.ToArray()));
                    break;
                default:
                    var contributions = Attribution.Contributions(model, searched, data, values, target, request.Algorithm, request.IntegratedGradientSteps, AmbientProgress.Or(request.Progress));
                    for (int i = 0; i < contributions.Count; i++)
                    {
                        var b = data.Batches[i];
                        units.Add(new BatchUnitResult(b.Index, request.Parts[b.Part].Name, b.FirstPrompt, b.Count, contributions[i]));
                    }
                    break;
            }
            var info = new DiscoveryInfo
            {
                Model = request.ModelName ?? model.Config.Name, Task = task.Name, Algorithm = request.Algorithm, Search = request.Search,
                Ablation = ablation, Target = target, Prompts = data.PromptCount, Seed = request.Seed,
                Settings = Settings(request, data),
            };
            return new DiscoveryPartial(new DiscoveryPlan { Info = info, Config = model.Config, SeparateQkv = task.SeparateQkv, Units = total }, units) { Work = work };
        }
        finally
        {
            foreach (var v in values) v.Values?.Dispose();
        }
    }

    /// <summary>
    /// The scores from the results of every work unit of a run, in unit order (from one process or from the part files
    /// of its shards): EAP/HISP sum the batches' contributions in batch order, ACDC takes each edge's smallest removing
    /// threshold, SP's training run is the result. Needs no model: the graphs are rebuilt from <see cref="DiscoveryPlan.Config"/>.
    /// </summary>
    public static DiscoveryResult Combine(DiscoveryPlan plan, IReadOnlyList<DiscoveryUnitResult> units)
    {
        if (units.Count != plan.Units) throw new ArgumentException($"The run has {plan.Units} work units, but {units.Count} results were given.");
        for (int i = 0; i < units.Count; i++)
            if (units[i].Index != i) throw new ArgumentException($"Work unit {i} is missing (found unit {units[i].Index} in its place).");
        var info = plan.Info;
        var searched = SearchGraph(plan.Config, plan.SeparateQkv, info.Search);
        var edgeGraph = ComputationGraph.Factorized(plan.Config, plan.SeparateQkv);
        T[] Expect<T>() where T : DiscoveryUnitResult => units.Select(u => u as T
            ?? throw new ArgumentException($"Work unit {u.Index} of a {info.Algorithm.Name()} run is a {u.GetType().Name}, not a {typeof(T).Name}.")).ToArray();

        double[] scores;
        IReadOnlyList<AcdcRun>? runs = null;
        IReadOnlyList<double>? losses = null;
        switch (DiscoveryUnits.KindOf(info.Algorithm))
        {
            case DiscoveryUnitKind.Threshold:
                runs = Expect<ThresholdUnitResult>().Select(u => new AcdcRun(u.Tau, u.Removed.Select(i => i >= 0 && i < searched.EdgeCount ? searched.Edges[i]
                    : throw new ArgumentException($"ACDC threshold {u.Tau}: edge index {i} is outside the searched graph's {searched.EdgeCount} edges.")).ToList(), u.Faithfulness)).ToList();
                scores = Acdc.Scores(searched, runs);
                break;
            case DiscoveryUnitKind.Training:
                var training = Expect<TrainingUnitResult>().Single();
                (scores, losses) = (training.Scores, training.Losses);
                break;
            default:
                scores = Attribution.Reduce(Expect<BatchUnitResult>().Select(u => u.Contribution), searched.EdgeCount, info.Prompts);
                break;
        }
        if (scores.Length != searched.EdgeCount) throw new ArgumentException($"The results score {scores.Length} edges, but the searched graph has {searched.EdgeCount}.");

        IReadOnlyList<NodeScore>? nodes = null;
        double[] edgeScores = scores;
        if (info.Search == SearchSpace.Node)
        {
            nodes = NodeToEdgeScores.NodeScores(searched, scores);
            edgeScores = NodeToEdgeScores.EdgeScores(nodes, edgeGraph);
        }
        return new DiscoveryResult
        {
            Scores = new EdgeScores(edgeGraph, edgeScores, info), Nodes = nodes, AcdcRuns = runs, TrainingLoss = losses, SearchedGraph = searched,
        };
    }

    static IReadOnlyList<KeyValuePair<string, string>> Settings(DiscoveryRequest request, DiscoveryData data)
    {
        static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        var list = new List<KeyValuePair<string, string>>
        {
            new("input", request.Algorithm == DiscoveryAlgorithm.SubnetworkProbing ? "corrupt prompts" : "clean prompts"),
            new("batches", data.TotalBatches.ToString(CultureInfo.InvariantCulture)),
        };
        switch (request.Algorithm)
        {
            case DiscoveryAlgorithm.Acdc:
                list.Add(new("tauBases", string.Join(",", request.Acdc.TauBases)));
                list.Add(new("tauExponents", string.Join(",", request.Acdc.TauExponents)));
                list.Add(new("edgeOrder", "destination layer descending, then destination in graph order, then source latest first"));
                break;
            case DiscoveryAlgorithm.SubnetworkProbing:
                var o = request.SubnetworkProbing;
                list.Add(new("learningRate", F(o.LearningRate)));
                list.Add(new("epochs", o.Epochs.ToString(CultureInfo.InvariantCulture)));
                list.Add(new("lambda", F(o.Lambda)));
                list.Add(new("initialLogit", F(o.InitialLogit)));
                break;
            case DiscoveryAlgorithm.EapIgInputs:
                list.Add(new("steps", request.IntegratedGradientSteps.ToString(CultureInfo.InvariantCulture)));
                list.Add(new("interpolation", "input embeddings, corrupt + (k/steps)(clean - corrupt), k = 1..steps"));
                break;
            case DiscoveryAlgorithm.EapIgActivations:
                list.Add(new("steps", request.IntegratedGradientSteps.ToString(CultureInfo.InvariantCulture)));
                list.Add(new("interpolation", "every edge mask at 1 - k/steps, k = 1..steps"));
                break;
            default:
                list.Add(new("maskValue", "0"));
                break;
        }
        return list;
    }
}
