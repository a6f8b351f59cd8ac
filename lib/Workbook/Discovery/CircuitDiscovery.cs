using System.Globalization;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
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
    public static ComputationGraph SearchGraph(TransformerConfig config, TaskDefinition task, SearchSpace search) =>
        search == SearchSpace.Edge ? ComputationGraph.Factorized(config, task.SeparateQkv) : ComputationGraph.Residual(config);

    public static DiscoveryResult Run(DiscoveryRequest request)
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

    static DiscoveryResult RunWithCurrentThreads(DiscoveryRequest request)
    {
        var model = request.Model;
        var task = request.Task;
        var progress = AmbientProgress.Or(request.Progress);
        var searched = SearchGraph(model.Config, task, request.Search);
        var edgeGraph = ComputationGraph.Factorized(model.Config, task.SeparateQkv);
        using var data = DiscoveryData.Prepare(model, task, request.Parts, request.BatchSize ?? task.DefaultBatchSize);
        bool tokenAnswers = data.Batches[0].Targets.Answers is not null;
        var target = request.Target ?? DefaultTarget(request.Algorithm, tokenAnswers);
        data.Check(target);
        var ablation = request.Ablation ?? DefaultAblation(request.Algorithm);
        if (ablation.Kind == AblationKind.GaussianNoise)
            throw new ArgumentException("Discovery supports resample, zero and mean ablation, not Gaussian noise.");
        // SP runs the corrupt prompts and moves edges towards the patch values; the others run the clean prompts and ablate.
        var direction = request.Algorithm == DiscoveryAlgorithm.SubnetworkProbing ? PatchDirection.RestoreCorrupt : PatchDirection.AblateClean;

        // Dataset means are taken over each part's prompts (prompts of different parts may differ in length), as in evaluation.
        var means = new Dictionary<int, MeanReference>();
        var values = new List<PatchValues>();
        try
        {
            foreach (var b in data.Batches)
            {
                MeanReference? reference = null;
                if (ablation.Kind == AblationKind.Mean && ablation.MeanOver != MeanOver.Batch && !means.TryGetValue(b.Part, out reference))
                    means[b.Part] = reference = MeanReference.Compute(model, searched, data.Batches.Where(x => x.Part == b.Part).Select(x => x.Pair));
                using var scope = TorchSharp.torch.NewDisposeScope();
                var v = PatchValues.Compute(model, searched, ablation, direction, b.Pair, reference, b.Prefix);
                // Dataset means are shared by every batch and owned by the MeanReference; anything else is this batch's own.
                values.Add(v.Values is { } t ? new PatchValues(t.clone().DetachFromDisposeScope()) : v);
            }

            double[] scores;
            IReadOnlyList<AcdcRun>? runs = null;
            IReadOnlyList<double>? losses = null;
            switch (request.Algorithm)
            {
                case DiscoveryAlgorithm.Acdc:
                    (scores, runs) = Acdc.Run(model, searched, data, values, target, request.Acdc, progress);
                    break;
                case DiscoveryAlgorithm.SubnetworkProbing:
                    (scores, losses) = SubnetworkProbing.Run(model, searched, data, values, target, request.SubnetworkProbing, request.Seed, progress);
                    break;
                default:
                    scores = Attribution.Run(model, searched, data, values, target, request.Algorithm == DiscoveryAlgorithm.Hisp, progress);
                    break;
            }

            IReadOnlyList<NodeScore>? nodes = null;
            double[] edgeScores = scores;
            if (request.Search == SearchSpace.Node)
            {
                nodes = NodeToEdgeScores.NodeScores(searched, scores);
                edgeScores = NodeToEdgeScores.EdgeScores(nodes, edgeGraph);
            }
            var info = new DiscoveryInfo
            {
                Model = request.ModelName ?? model.Config.Name, Task = task.Name, Algorithm = request.Algorithm, Search = request.Search,
                Ablation = ablation, Target = target, Prompts = data.PromptCount, Seed = request.Seed,
                Settings = Settings(request, data),
            };
            return new DiscoveryResult
            {
                Scores = new EdgeScores(edgeGraph, edgeScores, info), Nodes = nodes, AcdcRuns = runs, TrainingLoss = losses, SearchedGraph = searched,
            };
        }
        finally
        {
            foreach (var v in values) v.Values?.Dispose();
            foreach (var m in means.Values) m.Dispose();
        }
    }

    static IReadOnlyList<KeyValuePair<string, string>> Settings(DiscoveryRequest request, DiscoveryData data)
    {
        static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        var list = new List<KeyValuePair<string, string>>
        {
            new("input", request.Algorithm == DiscoveryAlgorithm.SubnetworkProbing ? "corrupt prompts" : "clean prompts"),
            new("batches", data.Batches.Count.ToString(CultureInfo.InvariantCulture)),
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
            default:
                list.Add(new("maskValue", "0"));
                break;
        }
        return list;
    }
}
