using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>Resample (interchange) ablation: each source takes its output on the paired prompt of the same batch element.</summary>
public sealed record ResampleAblation() : AblationValue("resample", "Resample",
    "the source's output on the paired prompt (the corrupt prompt when a clean input is ablated)", AblationNeeds.PairedPrompts)
{
    public override PatchValues Compute(AblationContext context) => FromPairedRecording(context.RecordSources(context.PairedPrompts));

    public override bool ComputedFromPairedRecording => true;

    /// <summary>The recording itself: each batch element takes its paired prompt's outputs.</summary>
    public override PatchValues FromPairedRecording(Tensor pairedSources) => new(pairedSources);

    internal static VocabularyEntry<AblationValue> Entry => SingleSpelling(new ResampleAblation());
}
