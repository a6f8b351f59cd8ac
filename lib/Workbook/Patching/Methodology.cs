using System.Globalization;
using Workbook.Graph;
using Workbook.Util;

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

    /// <summary>
    /// The methodology's one spelling, e.g. <c>edge/specific/resample/ablate-clean/complement</c>: component, token
    /// positions, ablation value, direction and ablated set, then <c>/heads</c> for head granularity and
    /// <c>/prefix-N</c> for an explicit never-patched prefix. <see cref="Parse"/> reads it back.
    /// </summary>
    public string Label =>
        $"{Components[Component]}/{PositionChoices[Positions]}/{Value.Label}/{Directions[Direction]}/{Sets[Ablate]}" +
        (Granularity == Granularity.Heads ? "/" + Granularities[Granularity.Heads] : "") +
        (NeverPatchedPrefix is int prefix ? $"/{PrefixWord}{prefix.ToString(CultureInfo.InvariantCulture)}" : "");

    public override string ToString() => Label;

    /// <summary>
    /// The methodology a <see cref="Label"/> spells (case-insensitive; <c>nodes</c>/<c>edges</c> also read). Errors name
    /// the part that is wrong.
    /// </summary>
    public static Methodology Parse(string label)
    {
        var parts = label.Trim().Split('/');
        if (parts.Length < 5)
            throw new ArgumentException($"Methodology '{label}' must read component/positions/value/direction/set (e.g. edge/specific/resample/ablate-clean/complement), " +
                                        "optionally followed by /heads and /prefix-N.");
        var methodology = new Methodology
        {
            Component = Components.Parse(parts[0]), Positions = PositionChoices.Parse(parts[1]), Value = AblationValue.Parse(parts[2]),
            Direction = Directions.Parse(parts[3]), Ablate = Sets.Parse(parts[4]),
        };
        foreach (var extra in parts.Skip(5))
        {
            if (Granularities.TryParse(extra, out var granularity) && granularity == Granularity.Heads && methodology.Granularity != Granularity.Heads)
                methodology = methodology with { Granularity = granularity };
            else if (extra.StartsWith(PrefixWord, StringComparison.OrdinalIgnoreCase) && methodology.NeverPatchedPrefix is null
                     && int.TryParse(extra.AsSpan(PrefixWord.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int prefix))
                methodology = methodology with { NeverPatchedPrefix = prefix };
            else
                throw new ArgumentException($"Methodology '{label}': unexpected '{extra}' after the set; only /heads and /prefix-N (N >= 0) may follow, once each.");
        }
        return methodology;
    }

    const string PrefixWord = "prefix-";

    // The words of each choice: the one place labels, parsing, the command line and the exports get them.
    public static EnumSpelling<Component> Components { get; } = new("component", (Component.Node, "node", new[] { "nodes" }), (Component.Edge, "edge", new[] { "edges" }));
    public static EnumSpelling<TokenPositions> PositionChoices { get; } = new("token positions", (TokenPositions.All, "all", Array.Empty<string>()), (TokenPositions.Specific, "specific", Array.Empty<string>()));
    public static EnumSpelling<PatchDirection> Directions { get; } = new("direction", (PatchDirection.AblateClean, "ablate-clean", Array.Empty<string>()), (PatchDirection.RestoreCorrupt, "restore-corrupt", Array.Empty<string>()));
    public static EnumSpelling<AblatedSet> Sets { get; } = new("set", (AblatedSet.Complement, "complement", Array.Empty<string>()), (AblatedSet.Circuit, "circuit", Array.Empty<string>()));
    public static EnumSpelling<Granularity> Granularities { get; } = new("granularity", (Granularity.QkvSeparate, "qkv", Array.Empty<string>()), (Granularity.Heads, "heads", Array.Empty<string>()));
}
