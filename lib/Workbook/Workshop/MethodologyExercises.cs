using Workbook.Patching;

namespace Workbook.Workshop;

/// <summary>Notebook 3 (the six choices): the methodologies its exercises ask for, checked choice by choice.</summary>
public static class MethodologyExercises
{
    /// <summary>Exercise 3.1: the paper's Figure 3 "nodes, specific tokens, Mean (ABC)": nodes, the circuit's positions, the corrupt prompts' dataset mean.</summary>
    public static Methodology NodesMeanAbc { get; } = new()
    {
        Component = Component.Node, Positions = TokenPositions.Specific, Value = AblationValue.Mean(MeanOver.Corrupt),
    };

    /// <summary>Exercise 3.2: the default methodology with the circuit itself ablated (is the circuit necessary?).</summary>
    public static Methodology CircuitAblated { get; } = new() { Ablate = AblatedSet.Circuit };

    public static CheckResult NodesMean(Methodology? answer)
    {
        var result = Check.Methodology("3.1", answer, NodesMeanAbc, "nodesMeanAbc");
        if (result.Status == CheckStatus.Failed && answer?.Value is MeanAblation { Over: MeanOver.Batch })
            return result with { Message = result.Message + " mean-batch averages the current batch only (Figure 4's setting); Figure 3 uses the whole part's corrupt prompts: AblationValue.Mean(MeanOver.Corrupt)." };
        return result;
    }

    public static CheckResult Necessity(Methodology? answer)
    {
        var result = Check.Methodology("3.2", answer, CircuitAblated, "necessity");
        if (result.Status == CheckStatus.Failed && answer is { Ablate: AblatedSet.Circuit, Direction: PatchDirection.RestoreCorrupt })
            return result with { Message = result.Message + " Restoring the circuit on the corrupt run asks whether the circuit is sufficient to restore the answer, a different question; keep ablate-clean." };
        return result;
    }
}
