using Workbook.Graph;

namespace Workbook.Patching;

/// <summary>Granularity of the graph: one destination per Q, K and V input of each head, or one per head.</summary>
public enum Granularity { QkvSeparate, Heads }

/// <summary>Ablate nodes (each head's output everywhere downstream) or individual edges.</summary>
public enum Component { Node, Edge }

/// <summary>What replaces an ablated source.</summary>
public enum AblationKind
{
    /// <summary>The source's output on the paired prompt of the same batch element (resample / interchange ablation).</summary>
    Resample,
    Zero,
    /// <summary>A mean of the source's output over a prompt set (see <see cref="MeanOver"/>).</summary>
    Mean,
    /// <summary>The source's output on the input prompt with Gaussian noise added to the embeddings (causal tracing).</summary>
    GaussianNoise,
}

/// <summary>The prompts a mean ablation averages over.</summary>
public enum MeanOver
{
    /// <summary>The task's clean prompts (AutoCircuit TOKENWISE_MEAN_CLEAN).</summary>
    Clean,
    /// <summary>The task's corrupt prompts (TOKENWISE_MEAN_CORRUPT; the paper's "Mean (ABC)" for IOI).</summary>
    Corrupt,
    /// <summary>Clean and corrupt prompts together (TOKENWISE_MEAN_CLEAN_AND_CORRUPT).</summary>
    CleanAndCorrupt,
    /// <summary>The current batch's patch-source prompts (BATCH_TOKENWISE_MEAN / BATCH_ALL_TOK_MEAN).</summary>
    Batch,
}

/// <summary>The value that replaces an ablated source's output.</summary>
public sealed record AblationValue
{
    public AblationKind Kind { get; init; }
    public MeanOver MeanOver { get; init; } = MeanOver.Corrupt;
    /// <summary>Mean separately at each token position (true, the paper's default) or over all positions.</summary>
    public bool Tokenwise { get; init; } = true;
    /// <summary>Noise standard deviation as a multiple of the embeddings' standard deviation.</summary>
    public double NoiseScale { get; init; } = 3.0;
    public int NoiseSeed { get; init; }

    public static AblationValue Resample { get; } = new() { Kind = AblationKind.Resample };
    public static AblationValue Zero { get; } = new() { Kind = AblationKind.Zero };
    public static AblationValue Mean(MeanOver over, bool tokenwise = true) => new() { Kind = AblationKind.Mean, MeanOver = over, Tokenwise = tokenwise };
    public static AblationValue Noise(double scale, int seed) => new() { Kind = AblationKind.GaussianNoise, NoiseScale = scale, NoiseSeed = seed };

    public override string ToString() => Kind switch
    {
        AblationKind.Mean => $"mean-{MeanOver switch { MeanOver.Clean => "clean", MeanOver.Corrupt => "corrupt", MeanOver.CleanAndCorrupt => "both", _ => "batch" }}{(Tokenwise ? "" : "-alltok")}",
        AblationKind.GaussianNoise => $"noise({NoiseScale:G3},seed={NoiseSeed})",
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

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
        $"{Component.ToString().ToLowerInvariant()}/{(Positions == TokenPositions.All ? "all" : "specific")}/{Value}/" +
        $"{(Direction == PatchDirection.AblateClean ? "ablate-clean" : "restore-corrupt")}/{Ablate.ToString().ToLowerInvariant()}" +
        (Granularity == Granularity.Heads && Component == Component.Edge ? "/heads" : "");

    public override string ToString() => Label;
}
