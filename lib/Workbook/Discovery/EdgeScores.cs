using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Patching;
using Workbook.Util;

namespace Workbook.Discovery;

/// <summary>The circuit-discovery algorithms of the paper's Section 5 (spec A.5), by their CLI names.</summary>
public enum DiscoveryAlgorithm
{
    /// <summary><c>acdc</c>: Conmy et al.'s ACDC run at 120 thresholds; an edge's score is the smallest threshold that pruned it (+∞: never).</summary>
    Acdc,
    /// <summary>
    /// <c>eap</c>: edge attribution patching, ∂loss/∂mask at mask 0 with the batch sharing one mask (the batch-mean loss's
    /// gradient). AutoCircuit's <c>mask_gradient_prune_scores</c>, which the paper labels "HISP".
    /// </summary>
    Eap,
    /// <summary><c>sp</c>: subnetwork probing, hard-concrete masks trained with Adam; score = learned mask logit + |smallest logit|.</summary>
    SubnetworkProbing,
    /// <summary>
    /// <c>hisp</c>: head importance score for pruning (Michel et al.) on edges or nodes: the same gradient as <c>eap</c> taken per
    /// prompt (a mask of its own for each prompt), averaged in absolute value over the prompts.
    /// </summary>
    Hisp,
    /// <summary>
    /// <c>eap-ig-inputs</c>: EAP with integrated gradients over the input (Hanna et al. 2024): the token embeddings move
    /// from the corrupt prompts' to the clean prompts' in <see cref="DiscoveryRequest.IntegratedGradientSteps"/> steps,
    /// α_k = k/m for k = 1..m; the gradients at every destination are averaged over the steps and multiplied by the
    /// clean run's Δ = patch − current, as in <c>eap</c>. One step (α = 1, the clean run) is exactly <c>eap</c>.
    /// </summary>
    EapIgInputs,
    /// <summary>
    /// <c>eap-ig-activations</c>: integrated gradients along the patch masks: every edge's mask moves together from 1
    /// (all edges patched) to 0, μ_k = 1 − k/m for k = 1..m, and an edge's score is the mean of ∂loss/∂mask over those
    /// points (AutoCircuit's integrated-gradient mask scores). One step (μ = 0) is <c>eap</c> up to float rounding; with
    /// many steps the scores sum to loss(all edges patched) − loss(none) (completeness).
    /// </summary>
    EapIgActivations,
}

/// <summary>Whether an algorithm searches over edges (factorized graph) or nodes (residual graph; scores then mapped onto edges).</summary>
public enum SearchSpace { Edge, Node }

/// <summary>The quantity an algorithm optimises or differentiates (spec A.5, B).</summary>
public enum DiscoveryTarget
{
    /// <summary><c>kl</c>: KL(unpatched model on the clean prompt ‖ patched run), averaged over prompts and read positions.</summary>
    Kl,
    /// <summary><c>mse</c>: mean squared difference between the patched outputs and the unpatched model's clean outputs.</summary>
    Mse,
    /// <summary><c>mse-answers</c>: mean squared difference between the outputs and the task's numeric answers (Tracr X-Proportion).</summary>
    MseToAnswers,
    /// <summary><c>logit-diff</c>: minus the logit difference (answer − wrong answer), averaged over prompts and read positions.</summary>
    LogitDiff,
}

/// <summary>CLI names, display names and the documented meaning of each algorithm's scores.</summary>
public static class DiscoveryNames
{
    public static string Name(this DiscoveryAlgorithm a) => a switch
    {
        DiscoveryAlgorithm.Acdc => "acdc",
        DiscoveryAlgorithm.Eap => "eap",
        DiscoveryAlgorithm.SubnetworkProbing => "sp",
        DiscoveryAlgorithm.EapIgInputs => "eap-ig-inputs",
        DiscoveryAlgorithm.EapIgActivations => "eap-ig-activations",
        _ => "hisp",
    };

    /// <summary>A label for plots and reports.</summary>
    public static string DisplayName(this DiscoveryAlgorithm a) => a switch
    {
        DiscoveryAlgorithm.Acdc => "ACDC",
        DiscoveryAlgorithm.Eap => "Edge attribution patching (the paper's HISP)",
        DiscoveryAlgorithm.SubnetworkProbing => "Subnetwork Probing",
        DiscoveryAlgorithm.EapIgInputs => "EAP-IG (inputs)",
        DiscoveryAlgorithm.EapIgActivations => "EAP-IG (activations)",
        _ => "HISP (per-prompt |gradient|)",
    };

    public static IReadOnlyList<DiscoveryAlgorithm> AllAlgorithms { get; } = Enum.GetValues<DiscoveryAlgorithm>();

    /// <summary>The four algorithms of the paper's Section 5 (Figures 5 and 12).</summary>
    public static IReadOnlyList<DiscoveryAlgorithm> PaperAlgorithms { get; } =
        new[] { DiscoveryAlgorithm.Acdc, DiscoveryAlgorithm.Eap, DiscoveryAlgorithm.SubnetworkProbing, DiscoveryAlgorithm.Hisp };

    /// <summary>Whether the algorithm integrates gradients over <see cref="DiscoveryRequest.IntegratedGradientSteps"/> steps.</summary>
    public static bool IsIntegratedGradients(this DiscoveryAlgorithm a) => a is DiscoveryAlgorithm.EapIgInputs or DiscoveryAlgorithm.EapIgActivations;

    public static DiscoveryAlgorithm ParseAlgorithm(string text)
    {
        // "eap-ig" alone is Hanna et al.'s original (and MIB's default) variant: interpolating the inputs.
        if (string.Equals(text, "eap-ig", StringComparison.OrdinalIgnoreCase)) return DiscoveryAlgorithm.EapIgInputs;
        foreach (var a in AllAlgorithms)
            if (string.Equals(a.Name(), text, StringComparison.OrdinalIgnoreCase)) return a;
        var names = AllAlgorithms.Select(x => x.Name()).ToList();
        throw new ArgumentException($"Unknown algorithm '{text}'.{NearestNames.DidYouMean(text, names)} Algorithms: {string.Join(", ", names)} (eap-ig = eap-ig-inputs).");
    }

    public static string Name(this SearchSpace s) => s == SearchSpace.Edge ? "edge" : "node";

    public static SearchSpace ParseSearch(string text) => text.ToLowerInvariant() switch
    {
        "edge" or "edges" => SearchSpace.Edge,
        "node" or "nodes" => SearchSpace.Node,
        _ => throw new ArgumentException($"Unknown search '{text}'. Use edge or node."),
    };

    public static string Name(this DiscoveryTarget t) => t switch
    {
        DiscoveryTarget.Kl => "kl",
        DiscoveryTarget.Mse => "mse",
        DiscoveryTarget.MseToAnswers => "mse-answers",
        _ => "logit-diff",
    };

    public static DiscoveryTarget ParseTarget(string text)
    {
        foreach (var t in Enum.GetValues<DiscoveryTarget>())
            if (string.Equals(t.Name(), text, StringComparison.OrdinalIgnoreCase)) return t;
        throw new ArgumentException($"Unknown target '{text}'.{NearestNames.DidYouMean(text, Enum.GetValues<DiscoveryTarget>().Select(x => x.Name()))} Targets: kl, mse, mse-answers, logit-diff.");
    }

    /// <summary>What a score means for <paramref name="a"/>; the same text goes into every scores file.</summary>
    public static string ScoreMeaning(this DiscoveryAlgorithm a) => a switch
    {
        DiscoveryAlgorithm.Acdc =>
            "smallest threshold tau at which ACDC removed the edge (+Infinity: kept at every threshold); larger = more important",
        DiscoveryAlgorithm.Eap =>
            "d(loss)/d(mask) at mask 0, the batch sharing one mask (mask 1 = ablated); signed: positive = ablating the edge raises the loss; " +
            "importance = |score|",
        DiscoveryAlgorithm.SubnetworkProbing =>
            "learned hard-concrete mask logit + |smallest logit| (>= 0); larger = more important",
        DiscoveryAlgorithm.EapIgInputs =>
            "mean over integration steps of d(loss)/d(mask) at mask 0 with the input embeddings interpolated from the corrupt to the clean prompts, " +
            "times the clean run's (patch - current); signed like eap; importance = |score|",
        DiscoveryAlgorithm.EapIgActivations =>
            "mean over integration steps of d(loss)/d(mask) with every mask at 1 - k/steps (all edges partly patched); signed like eap; importance = |score|",
        _ => "mean over prompts of |d(loss_p)/d(mask_p)| at mask 0 (>= 0); larger = more important",
    };
}

/// <summary>How a set of scores was produced: enough to rerun it.</summary>
public sealed record DiscoveryInfo
{
    /// <summary>The model's name (its config name).</summary>
    public required string Model { get; init; }
    public required string Task { get; init; }
    public required DiscoveryAlgorithm Algorithm { get; init; }
    public required SearchSpace Search { get; init; }
    /// <summary>The value ablated edges take (patch values).</summary>
    public required AblationValue Ablation { get; init; }
    public required DiscoveryTarget Target { get; init; }
    public required int Prompts { get; init; }
    public required int Seed { get; init; }
    /// <summary>The algorithm's own settings (thresholds, epochs, learning rate, ...), in a fixed order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Settings { get; init; } = Array.Empty<KeyValuePair<string, string>>();
}

/// <summary>
/// One score per edge of a factorized graph, the single result type of every discovery algorithm. <see cref="Score"/>
/// is the algorithm's own value (see <see cref="DiscoveryNames.ScoreMeaning"/>; ±∞ allowed, NaN not);
/// <see cref="Importance"/> = |score| orders edges for circuits and ROC curves: larger = more important, for every
/// algorithm. Node searches are mapped onto these edges (<see cref="NodeToEdgeScores"/>).
/// </summary>
public sealed class EdgeScores
{
    readonly double[] _scores;

    public ComputationGraph Graph { get; }
    public DiscoveryInfo Info { get; }
    /// <summary>Scores indexed by <see cref="Edge.Index"/>.</summary>
    public IReadOnlyList<double> Scores => _scores;

    public EdgeScores(ComputationGraph graph, IReadOnlyList<double> scores, DiscoveryInfo info)
    {
        if (graph.View != GraphView.Factorized)
            throw new ArgumentException($"Edge scores belong to a factorized graph; got the {graph.Describe()}.");
        if (scores.Count != graph.EdgeCount)
            throw new ArgumentException($"Expected {graph.EdgeCount} scores (one per edge of the {graph.Describe()}), got {scores.Count}.");
        for (int i = 0; i < scores.Count; i++)
            if (double.IsNaN(scores[i])) throw new ArgumentException($"The score of edge {graph.Edges[i].Name} is NaN.");
        Graph = graph;
        _scores = scores.ToArray();
        Info = info;
    }

    public double this[Edge edge] => _scores[edge.Index];

    public double Score(string edgeName) => _scores[Circuit.ParseEdge(Graph, edgeName).Edge.Index];

    /// <summary>|score|: what circuits and ROC curves rank by (larger = more important).</summary>
    public double Importance(Edge edge) => Math.Abs(_scores[edge.Index]);

    /// <summary>Edges from most to least important (ties in graph order).</summary>
    public IReadOnlyList<Edge> Ranked() =>
        Graph.Edges.OrderByDescending(e => Math.Abs(_scores[e.Index])).ThenBy(e => e.Index).ToList();

    /// <summary>
    /// The <paramref name="count"/> most important edges as a circuit (spec 0.6: every edge whose |score| reaches the
    /// count-th largest, so ties can make it larger; 0 gives the empty circuit).
    /// </summary>
    public Circuit Top(int count)
    {
        if (count < 0 || count > Graph.EdgeCount) throw new ArgumentOutOfRangeException(nameof(count), $"Choose between 0 and {Graph.EdgeCount} edges.");
        if (count == 0) return Circuit.Empty(Graph);
        double threshold = Ranked()[count - 1] is var e ? Importance(e) : 0;
        return Circuit.From(Graph, Graph.Edges.Where(x => Importance(x) >= threshold).Select(x => new CircuitEdge(x, null)));
    }
}

/// <summary>The score of one node of the residual graph (node search): the score of its single out-edge.</summary>
public sealed record NodeScore(string Node, double Score);

/// <summary>One ACDC run: its threshold, the edges it removed (in removal order) and the faithfulness loss it ended with.</summary>
public sealed record AcdcRun(double Tau, IReadOnlyList<Edge> Removed, double Faithfulness);

/// <summary>The outcome of a discovery run: edge scores, plus what the algorithm can say besides.</summary>
public sealed record DiscoveryResult
{
    public required EdgeScores Scores { get; init; }
    /// <summary>Node search: the score of every node of the residual graph (before mapping onto edges).</summary>
    public IReadOnlyList<NodeScore>? Nodes { get; init; }
    /// <summary>ACDC: every run, in threshold order. Its circuit is the complement of <see cref="AcdcRun.Removed"/> (in the searched graph).</summary>
    public IReadOnlyList<AcdcRun>? AcdcRuns { get; init; }
    /// <summary>The graph the algorithm searched (factorized for edge search, residual for node search).</summary>
    public required ComputationGraph SearchedGraph { get; init; }
    /// <summary>Subnetwork probing: the training loss (faithfulness + penalty) at every step.</summary>
    public IReadOnlyList<double>? TrainingLoss { get; init; }
}
