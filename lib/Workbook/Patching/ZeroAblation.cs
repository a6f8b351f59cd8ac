using Workbook.Util;

namespace Workbook.Patching;

/// <summary>Zero ablation: an ablated source contributes nothing.</summary>
public sealed record ZeroAblation : AblationValue
{
    public override string Label => "zero";
    public override string Legend => "Zero";
    public override string Description => "zero: the ablated source contributes nothing";
    public override AblationNeeds Needs => AblationNeeds.None;

    public override PatchValues Compute(AblationContext context) => PatchValues.Zero;

    internal static VocabularyEntry<AblationValue> Entry => SingleSpelling(new ZeroAblation());
}
