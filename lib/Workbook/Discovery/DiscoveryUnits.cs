using System.Text.Json.Serialization;
using Workbook.Model;

namespace Workbook.Discovery;

/// <summary>
/// What one work unit of a discovery run is. The units of a run are independent: each can run in its own process
/// (a shard), and <see cref="CircuitDiscovery.Combine"/> turns the results of all of them into exactly the scores of
/// one unsplit run.
/// </summary>
public enum DiscoveryUnitKind
{
    /// <summary>EAP and HISP: one batch of prompts; its gradient contributions are summed over batches in batch order.</summary>
    Batch,
    /// <summary>ACDC: one threshold τ; each threshold is an independent run from the unpatched model, and a score is a minimum over runs.</summary>
    Threshold,
    /// <summary>Subnetwork probing: the whole training run (its Adam steps depend on every earlier step, so it cannot be split).</summary>
    Training,
}

public static class DiscoveryUnits
{
    public static DiscoveryUnitKind KindOf(DiscoveryAlgorithm algorithm) => algorithm switch
    {
        DiscoveryAlgorithm.Acdc => DiscoveryUnitKind.Threshold,
        DiscoveryAlgorithm.SubnetworkProbing => DiscoveryUnitKind.Training,
        _ => DiscoveryUnitKind.Batch,
    };

    public static string Describe(DiscoveryAlgorithm algorithm) => KindOf(algorithm) switch
    {
        DiscoveryUnitKind.Threshold => "acdc: one unit per threshold",
        DiscoveryUnitKind.Training => "sp: one training run, which cannot be split",
        _ => $"{algorithm.Name()}: one unit per batch of prompts",
    };
}

/// <summary>The result of one work unit of a discovery run (the payload of a shard's part file).</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(BatchUnitResult), "batch")]
[JsonDerivedType(typeof(ThresholdUnitResult), "threshold")]
[JsonDerivedType(typeof(TrainingUnitResult), "training")]
public abstract record DiscoveryUnitResult(int Index);

/// <summary>EAP/HISP: a batch (prompts [FirstPrompt, FirstPrompt + Prompts) of dataset part Part) and its contribution to every searched edge's score.</summary>
public sealed record BatchUnitResult(int Index, string Part, int FirstPrompt, int Prompts, double[] Contribution) : DiscoveryUnitResult(Index);

/// <summary>ACDC: one threshold's run: the searched graph's edges it removed (by index, in removal order) and its final loss.</summary>
public sealed record ThresholdUnitResult(int Index, double Tau, int[] Removed, double Faithfulness) : DiscoveryUnitResult(Index);

/// <summary>Subnetwork probing: the searched edges' scores and the loss at every step.</summary>
public sealed record TrainingUnitResult(int Index, int Seed, double[] Scores, double[] Losses) : DiscoveryUnitResult(Index);

/// <summary>What <see cref="CircuitDiscovery.Combine"/> needs besides the unit results: how the scores were made and the model's graph.</summary>
public sealed record DiscoveryPlan
{
    public required DiscoveryInfo Info { get; init; }
    /// <summary>The model's configuration: the graphs are rebuilt from it, so combining needs no weights.</summary>
    public required TransformerConfig Config { get; init; }
    /// <summary>Whether the task's edge graph splits head inputs into Q, K and V.</summary>
    public required bool SeparateQkv { get; init; }
    /// <summary>The number of work units of the whole run.</summary>
    public required int Units { get; init; }
}

/// <summary>The results of some of a run's units (all of them for an unsharded run), in unit order.</summary>
public sealed record DiscoveryPartial(DiscoveryPlan Plan, IReadOnlyList<DiscoveryUnitResult> Units)
{
    /// <summary>ACDC: how many ablated sets it evaluated and in how many forward passes (null for the other algorithms).</summary>
    public AcdcWork? Work { get; init; }
}

/// <summary>ACDC's work: distinct ablated sets whose loss it computed, and the forward passes that took (stacked: fewer).</summary>
public sealed record AcdcWork(int CandidateSets, int ForwardPasses);
