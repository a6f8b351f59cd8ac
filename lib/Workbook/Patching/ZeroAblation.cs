using Workbook.Util;

namespace Workbook.Patching;

/// <summary>Zero ablation: an ablated source contributes nothing.</summary>
public sealed record ZeroAblation() : AblationValue("zero", "Zero", "zero: the ablated source contributes nothing", AblationNeeds.None)
{
    public override PatchValues Compute(AblationContext context) => PatchValues.Zero;

    internal static VocabularyEntry<AblationValue> Entry => SingleSpelling(new ZeroAblation());
}
