using Workbook.Circuits;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// A patch, prompt set or output that would make a faithfulness number meaningless, detected instead of reported
/// as a number: a patch that changes nothing where it must, NaN or infinite logits, means over too few prompts.
/// </summary>
public class PatchingGuardException : InvalidOperationException
{
    public PatchingGuardException(string message) : base(message) { }
}

/// <summary>
/// The requested patch names no edge at any patchable position, although the methodology must patch something:
/// ablating the circuit itself when the circuit is empty, or when every one of its edge-positions lies in the
/// never-patched prefix. (Keeping the whole model as the circuit, which patches nothing, is a legitimate identity
/// and is not an error.)
/// </summary>
public sealed class NoOpPatchException : PatchingGuardException
{
    public NoOpPatchException(string message) : base(message) { }
}

/// <summary>Logits with NaN or infinite values; the message names the methodology, part, batch and first prompt.</summary>
public sealed class NonFiniteLogitsException : PatchingGuardException
{
    public NonFiniteLogitsException(string message) : base(message) { }
}

/// <summary>
/// A mean ablation over fewer than <see cref="PatchingGuards.MinimumPromptsForMean"/> prompts: with one prompt a
/// token-wise mean is that prompt's own activations (mean-clean ablation of a clean input patches nothing,
/// mean-corrupt is resample ablation), so the result would silently measure something else.
/// </summary>
public sealed class TooFewPromptsForMeanException : ArgumentException
{
    public TooFewPromptsForMeanException(string message) : base(message) { }
}

/// <summary>The checks behind the guard exceptions, shared by the patching entry points and the evaluator.</summary>
public static class PatchingGuards
{
    /// <summary>Every mean ablation (batch or dataset, token-wise or over all positions) averages at least this many prompts.</summary>
    public const int MinimumPromptsForMean = 2;

    /// <summary>Throws <see cref="NoOpPatchException"/> when <paramref name="masks"/> patch nothing although <paramref name="methodology"/> ablates the circuit.</summary>
    public static void EnsurePatchesSomething(PatchMasks masks, Circuit circuit, Methodology methodology, int seqLen, int prefix)
    {
        if (methodology.Ablate != AblatedSet.Circuit || masks.Masks.Any(m => m is not null)) return;
        string reason;
        if (circuit.IsEmpty) reason = "the circuit is empty";
        else if (methodology.Positions == TokenPositions.Specific && prefix > 0 && circuit.Edges.All(e => e.Position is int p && p < prefix))
            reason = $"all {circuit.Count} of its edge-positions lie in the never-patched prefix (the first {prefix} of {seqLen} tokens)";
        else reason = $"none of its {circuit.Count} edge-positions falls on a patchable position (prompts of {seqLen} tokens, never-patched prefix {prefix})";
        throw new NoOpPatchException(
            $"Methodology {methodology.Label} ablates the circuit, but {reason}: the patch would change nothing and every metric would " +
            "report the unpatched model. Check the circuit and its positions (keeping the whole model, set=complement, is the way to ask for that identity).");
    }

    /// <summary>Throws <see cref="NonFiniteLogitsException"/> naming <paramref name="what"/> and the first prompt with a NaN or infinite value.</summary>
    public static void EnsureFinite(Tensor logits, Func<string> what, int firstPrompt = 0)
    {
        using var scope = NewDisposeScope();
        var badPerPrompt = logits.isfinite().logical_not().reshape(logits.shape[0], -1).any(1);
        if (!badPerPrompt.any().cpu().item<bool>()) return;
        long first = badPerPrompt.nonzero()[0, 0].cpu().item<long>();
        bool nan = logits[first].isnan().any().cpu().item<bool>();
        throw new NonFiniteLogitsException(
            $"{what()}: the logits contain {(nan ? "NaN" : "infinite values")} (first at prompt {firstPrompt + first}); no metric is computed from them. " +
            "Check the model's weights, the dtype (float16 overflows easily) and the patch values.");
    }
}
