using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Workshop;

/// <summary>Notebook 1 (hooks and activations): the checks of its exercises, on the toy IOI bench.</summary>
public static class HooksExercises
{
    /// <summary>Exercise 1.1: the attention weight of head <c>A{layer}.{head}</c> from the last position to S2 on the clean prompt.</summary>
    public static CheckResult AttentionToS2(IoiLab lab, int layer, int head, double? answer)
    {
        using var scope = NewDisposeScope();
        var pattern = CleanPattern(lab, layer)[0, head];
        var p = lab.Positions;
        double At(int query, int key) => pattern[query, key].item<float>();
        return Check.Number("1.1", answer, At(lab.End, p.Subject2), "attentionToS2", 1e-4,
            "Read the pattern of the clean run: cache[HookNames.Pattern[layer]] is [batch, head, query position, key position]; " +
            "the query is the last position and the key is S2's position.",
            new(At(lab.End, p.IndirectObject), "That is the weight on the indirect object (IO); the key position should be S2's (lab.Positions.Subject2)."),
            new(At(lab.End, p.Subject1), "That is the weight on the first mention of the subject (S1); the exercise asks for the second one (S2)."),
            new(At(p.Subject2, lab.End), "You swapped query and key: that is S2 looking at the end, which the causal mask sets to 0. The query (row) comes before the key (column)."),
            new(CleanPattern(lab, layer)[0, head == 0 ? 1 : 0, lab.End, p.Subject2].item<float>(), $"That is another head's weight; the head index is dimension 1 of the pattern (head {head})."));
    }

    /// <summary>Exercise 1.2: the clean logit difference with head <c>A{layer}.{head}</c>'s output set to zero at every position.</summary>
    public static CheckResult ZeroedHead(IoiLab lab, int layer, int head, double? answer)
    {
        double expected = lab.LogitDiff(lab.Clean, ZeroHead(layer, head, lastOnly: false));
        return Check.Number("1.2", answer, expected, "zeroedLogitDiff", 1e-3,
            "Zero one slice of blocks.{layer}.attn.hook_result ([batch, pos, head, d_model]) in a HookSet.Replace hook and run the clean prompt.",
            new(lab.LogitDiff(lab.Clean, null), "That is the clean logit difference: the hook changed nothing. Is the hook name right (HookNames.Result[layer]) and does the function return the changed tensor?"),
            new(lab.LogitDiff(lab.Clean, new HookSet().Replace(HookNames.AttnOut[layer], t => zeros_like(t))), "You zeroed the whole attention layer (every head and the output bias). Zero only the head's slice: dimension 2 of hook_result."),
            new(lab.LogitDiff(lab.Clean, new HookSet().Replace(HookNames.Result[layer], t => zeros_like(t))), "You zeroed every head of the layer (the whole attention layer but its bias). Zero only the head's slice: dimension 2 of hook_result."),
            new(lab.LogitDiff(lab.Clean, ZeroHead(layer, head, lastOnly: true)), "You zeroed the head only at the last position; the exercise zeroes it at every position."),
            new(lab.LogitDiff(lab.Corrupt, ZeroHead(layer, head, lastOnly: false)), "You ran the corrupt prompt; run lab.Clean."));
    }

    /// <summary>A hook that sets head <paramref name="head"/>'s output to zero (at the last position only, or everywhere).</summary>
    public static HookSet ZeroHead(int layer, int head, bool lastOnly) => new HookSet().Replace(HookNames.Result[layer], result =>
    {
        var copy = result.clone();
        if (lastOnly) copy[.., -1, head] = zeros_like(copy[.., -1, head]);
        else copy[.., .., head] = zeros_like(copy[.., .., head]);
        return copy;
    });

    static Tensor CleanPattern(IoiLab lab, int layer)
    {
        using var _ = no_grad();
        var (logits, cache) = lab.Model.RunWithCache(lab.Clean, name => name == HookNames.Pattern[layer]);
        using (cache)
        {
            logits.Dispose();
            return cache[HookNames.Pattern[layer]].clone();
        }
    }
}
