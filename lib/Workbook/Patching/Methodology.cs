using Workbook.Graph;

namespace Workbook.Patching;

/// <summary>Granularity of the graph: one destination per Q, K and V input of each head, or one per head.</summary>
public enum Granularity { QkvSeparate, Heads }

/// <summary>Ablate nodes (each head's output everywhere downstream) or individual edges.</summary>
public enum Component { Node, Edge }

/// <summary>Where masks apply: at every position, or only at the positions the circuit names.</summary>
public enum TokenPositions { All, Specific }

/// <summary>
/// Which run is patched. <see cref="AblateClean"/>: run the clean prompt and ablate (values from the corrupt side).
/// <see cref="RestoreCorrupt"/>: run the corrupt prompt and restore clean activations.
/// </summary>
public enum PatchDirection { AblateClean, RestoreCorrupt }

/// <summary>Which edges are patched: the circuit's complement (keep the circuit, the paper's default) or the circuit itself.</summary>
public enum AblatedSet { Complement, Circuit }

/// <summary>
/// The paper's six choices that define an ablation methodology: granularity, component, value, token positions,
/// direction and set, plus the positions that are never patched (a shared prompt prefix, spec F.3).
/// Every experiment is a list of these.
/// </summary>
public sealed record Methodology
{
    public Granularity Granularity { get; init; } = Granularity.QkvSeparate;
    public Component Component { get; init; } = Component.Edge;
    public AblationValue Value { get; init; } = AblationValue.Resample;
    public TokenPositions Positions { get; init; } = TokenPositions.Specific;
    public PatchDirection Direction { get; init; } = PatchDirection.AblateClean;
    public AblatedSet Ablate { get; init; } = AblatedSet.Complement;
    /// <summary>Positions before this index are never patched (null: the task's shared prefix; 0: patch everywhere).</summary>
    public int? NeverPatchedPrefix { get; init; }

    public GraphView View => Component == Component.Node ? GraphView.Residual : GraphView.Factorized;
    public bool SeparateQkv => Granularity == Granularity.QkvSeparate;

    /// <summary>A compact label such as "edge/specific/resample/ablate-clean/complement".</summary>
    public string Label =>
        $"{Component.ToString().ToLowerInvariant()}/{(Positions == TokenPositions.All ? "all" : "specific")}/{Value.Label}/" +
        $"{(Direction == PatchDirection.AblateClean ? "ablate-clean" : "restore-corrupt")}/{Ablate.ToString().ToLowerInvariant()}" +
        (Granularity == Granularity.Heads && Component == Component.Edge ? "/heads" : "");

    public override string ToString() => Label;
}
