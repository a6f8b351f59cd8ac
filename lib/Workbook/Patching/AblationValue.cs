using Workbook.Graph;
using Workbook.Model;
using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>What an ablation value reads besides the batch's input prompts.</summary>
[Flags]
public enum AblationNeeds
{
    None = 0,
    /// <summary>Each batch's paired prompts (the corrupt prompts when a clean input is ablated).</summary>
    PairedPrompts = 1,
    /// <summary>Means over a dataset part's prompts, computed before its batches (a <see cref="MeanReference"/>).</summary>
    DatasetMeans = 2,
}

/// <summary>What an ablation value may read to compute one batch's patch values.</summary>
public sealed record AblationContext
{
    public required HookedTransformer Model { get; init; }
    public required ComputationGraph Graph { get; init; }
    public required PromptPair Batch { get; init; }
    public required PatchDirection Direction { get; init; }
    /// <summary>Dataset means, for values that need <see cref="AblationNeeds.DatasetMeans"/>; else null.</summary>
    public MeanReference? Means { get; init; }
    /// <summary>Positions before this one are never patched (a shared prompt prefix).</summary>
    public int NeverPatchedPrefix { get; init; }

    /// <summary>The prompts the patched run reads.</summary>
    public Tensor InputPrompts => Batch.Input(Direction);
    /// <summary>The paired prompts, where resample and batch-mean values come from.</summary>
    public Tensor PairedPrompts => Batch.Other(Direction);

    /// <summary>Every graph source's output [n_sources, batch, seq, d_model] in an unpatched run of <paramref name="tokens"/>.</summary>
    public Tensor RecordSources(Tensor tokens, HookSet? hooks = null) => SourceRecorder.Record(Model, Graph, tokens, hooks).Sources;
}

/// <summary>
/// What replaces an ablated source's output: one of the paper's ablation values (resample, zero, the means,
/// Gaussian noise), each a small record that knows its label, its legend, what it needs and how to compute itself.
/// <see cref="Vocabulary"/> lists them all; the command line, exports, figures and reports read it. Add one by
/// deriving from this record and registering an entry (see docs/architecture.md).
/// </summary>
/// <param name="Label">The one spelling used everywhere (command line, exports, methodology labels), e.g. <c>mean-corrupt</c>.</param>
/// <param name="Legend">How figure legends name it, e.g. "Mean (ABC)".</param>
/// <param name="Description">One line for help texts.</param>
/// <param name="Needs">What it reads besides the batch's input prompts.</param>
[System.Text.Json.Serialization.JsonConverter(typeof(AblationValueJson))]
public abstract record AblationValue(string Label, string Legend, string Description, AblationNeeds Needs)
{
    /// <summary>
    /// The patch values of one batch: [n_sources, batch or 1, seq or 1, d_model] (broadcast over axes of size 1), or
    /// <see cref="PatchValues.Zero"/>. Values come from unpatched runs (spec 0.5).
    /// </summary>
    public abstract PatchValues Compute(AblationContext context);

    /// <summary>
    /// Checks, before any model run, that a dataset part of <paramref name="prompts"/> prompts evaluated in batches of
    /// <paramref name="batchSize"/> can support this value (a mean needs two prompts); throws when not.
    /// </summary>
    public virtual void CheckPrompts(string part, int prompts, int batchSize) { }

    /// <summary>
    /// True when the values are a function of one unpatched recording of the batch's paired prompts alone (resample, the
    /// batch mean): <see cref="Compute"/> is then <see cref="FromPairedRecording"/> of that recording, so a grid of
    /// methodologies can record the paired prompts once and share the recording (see <c>EvaluationCache</c>).
    /// </summary>
    public virtual bool ComputedFromPairedRecording => false;

    /// <summary>
    /// The values of a batch from every source's output in an unpatched run of its paired prompts, [n_sources, batch, seq,
    /// d_model], for a value that is <see cref="ComputedFromPairedRecording"/>. The result may be the recording itself
    /// (not a copy): whoever owns the recording owns the values.
    /// </summary>
    public virtual PatchValues FromPairedRecording(Tensor pairedSources) =>
        throw new NotSupportedException($"{Label} values do not come from a recording of the batch's paired prompts.");

    public sealed override string ToString() => Label;

    /// <summary>The source's output on the paired prompt of the same batch element (resample / interchange ablation).</summary>
    public static AblationValue Resample { get; } = new ResampleAblation();
    public static AblationValue Zero { get; } = new ZeroAblation();
    /// <summary>A mean of the source's output over <paramref name="over"/>'s prompts, per position (or over all positions).</summary>
    public static AblationValue Mean(MeanOver over, bool tokenwise = true) => new MeanAblation(over, tokenwise);
    /// <summary>The input's own run with Gaussian noise (std = <paramref name="scale"/> × the embeddings' std) added to its embeddings.</summary>
    public static AblationValue Noise(double scale = GaussianNoiseAblation.DefaultScale, int seed = 0) => new GaussianNoiseAblation(scale, seed);

    /// <summary>Every ablation value the workbook knows, in the order help texts list them.</summary>
    public static Vocabulary<AblationValue> Vocabulary { get; } = new("ablation value", v => v.Label,
        new[] { ResampleAblation.Entry, ZeroAblation.Entry }.Concat(MeanAblation.Entries).Append(GaussianNoiseAblation.Entry));

    /// <summary>The value spelled <paramref name="label"/> (case-insensitive), or an error naming the known spellings.</summary>
    public static AblationValue Parse(string label) => Vocabulary.Parse(label);

    /// <summary>The vocabulary entry of a value with one spelling and no parameters (its label).</summary>
    public static VocabularyEntry<AblationValue> SingleSpelling(AblationValue value) =>
        new(value.Label, value.Description, text => text == value.Label ? value : null, new[] { value });
}

/// <summary>An ablation value in JSON: its label.</summary>
public sealed class AblationValueJson() : LabelJsonConverter<AblationValue>(v => v.Label, AblationValue.Parse);
