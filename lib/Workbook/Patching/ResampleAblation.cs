using Workbook.Util;

namespace Workbook.Patching;

/// <summary>Resample (interchange) ablation: each source takes its output on the paired prompt of the same batch element.</summary>
public sealed record ResampleAblation() : AblationValue("resample", "Resample",
    "the source's output on the paired prompt (the corrupt prompt when a clean input is ablated)", AblationNeeds.PairedPrompts)
{
    public override PatchValues Compute(AblationContext context) => new(context.RecordSources(context.PairedPrompts));

    internal static VocabularyEntry<AblationValue> Entry => SingleSpelling(new ResampleAblation());
}
