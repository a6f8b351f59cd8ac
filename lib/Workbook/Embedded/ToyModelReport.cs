using Workbook.Evaluation;

namespace Workbook.Embedded;

/// <summary>How well a model does a task on a set of prompts, read at the last position.</summary>
/// <param name="Accuracy">Share of prompts whose top prediction over the whole vocabulary is the answer.</param>
/// <param name="BeatsCandidates">Share of prompts whose answer logit beats every wrong candidate's (the paper's Figures 9a and 10a).</param>
/// <param name="MeanLogitDiff">Mean over prompts of the answer's logit minus the largest wrong candidate's.</param>
/// <param name="MedianAnswerProbability">Median of the answer's probability (softmax over the vocabulary).</param>
public sealed record ToyTaskScore(int Prompts, double Accuracy, double BeatsCandidates, double MeanLogitDiff, double MedianAnswerProbability);

/// <summary>
/// The thresholds of a toy model's circuit search (<see cref="Discovery.CircuitPruning"/>, in points of percent): an entry
/// stays out when the circuit's distance from the full model grows by less than τ. The node search and the edge search
/// (which starts from the edges among the node circuit's nodes) have their own.
/// </summary>
public sealed record ToySearchThresholds(double NodeTau, double EdgeTau);

/// <summary>One methodology of a circuit's grid: the per-prompt distribution of logit difference recovered (percent).</summary>
public sealed record ToyGridEntry(string Methodology, double Median, double Q1, double Q3, double RatioOfMeans);

/// <summary>A circuit of a toy model: its entries, how the search went, and its grid on held-out prompts.</summary>
public sealed record ToyCircuitReport
{
    public required string Name { get; init; }
    /// <summary>Entries (an edge or head at one position) of the token-specific circuit.</summary>
    public required int Entries { get; init; }
    /// <summary>Distinct edges (the all-positions variant).</summary>
    public required int DistinctEdges { get; init; }
    /// <summary>Entries the search started from.</summary>
    public required int StartEntries { get; init; }
    /// <summary>Logit difference recovered (ratio of means, resample, token-specific) on the search prompts: the start and the result.</summary>
    public required double StartFaithfulness { get; init; }
    public required double SearchFaithfulness { get; init; }
}

/// <summary>
/// What a toy model's training run measured (saved as <c>evaluation.json</c> next to the checkpoint; every number of
/// its card): the recipe, held-out accuracy, the circuits and how they were found, and the methodology grid.
/// </summary>
public sealed record ToyModelReport
{
    public required string Model { get; init; }
    public required string Task { get; init; }
    /// <summary>The training options, as the trainer's options record serializes them.</summary>
    public required System.Text.Json.Nodes.JsonObject Options { get; init; }
    public required double TrainingSeconds { get; init; }
    public required int Parameters { get; init; }
    public required int EvaluationSeed { get; init; }
    public required ToyTaskScore HeldOut { get; init; }
    /// <summary>Prompts the model cannot know the answer to (Sports: made-up players it never saw), if the task has such.</summary>
    public ToyTaskScore? Unknown { get; init; }
    public required int SearchSeed { get; init; }
    public required int SearchPrompts { get; init; }
    public required ToySearchThresholds Tau { get; init; }
    public required ToyCircuitReport NodeCircuit { get; init; }
    public required ToyCircuitReport EdgeCircuit { get; init; }
    /// <summary>Node and edge circuits × resample and the task's mean × specific and all positions, circuit kept, on the evaluation prompts.</summary>
    public required IReadOnlyList<ToyGridEntry> Grid { get; init; }
    public required IReadOnlyList<FactorEffect> Sensitivity { get; init; }
}
