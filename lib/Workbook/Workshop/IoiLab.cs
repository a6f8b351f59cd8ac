using Workbook.Checkpoints;
using Workbook.Embedded;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Workshop;

/// <summary>
/// The bench of the first workshop notebooks: the built-in toy IOI model, one clean/corrupt prompt pair as token
/// tensors, and the logit difference at the last position. The exercises' checks compute their expected values on
/// the same bench.
/// </summary>
public sealed class IoiLab : IDisposable
{
    readonly LoadedModel _loaded;

    public HookedTransformer Model => _loaded.Model;
    public ITokenizer Tokenizer { get; }
    public IoiPromptPair Pair { get; }
    /// <summary>The clean and corrupt prompts as [1, positions] token tensors.</summary>
    public PromptPair Prompts { get; }
    public Tensor Clean => Prompts.Clean;
    public Tensor Corrupt => Prompts.Corrupt;
    /// <summary>The last position, where the model predicts the indirect object.</summary>
    public int End => Pair.CleanTokens.Length - 1;
    public IoiPositions Positions => Pair.Positions;

    IoiLab(LoadedModel loaded, IoiPromptPair pair)
    {
        _loaded = loaded;
        Tokenizer = loaded.RequireTokenizer();
        Pair = pair;
        Prompts = new PromptPair(Tokens(pair.CleanTokens), Tokens(pair.CorruptTokens));
    }

    /// <summary>toy-ioi on the CPU and the prompt pair <paramref name="seed"/> generates (template 0 unless given).</summary>
    public static IoiLab Load(ulong seed = 1, int template = 0)
    {
        var loaded = ModelLoader.LoadWithTokenizer(ToyIoi.Alias);
        try { return new IoiLab(loaded, ToyIoi.Prompts(1, seed, template)[0]); }
        catch { loaded.Dispose(); throw; }
    }

    static Tensor Tokens(int[] ids) => tensor(ids.Select(t => (long)t).ToArray()).unsqueeze(0);

    /// <summary>logit(indirect object) − logit(subject) at the last position of the first prompt of [B, T, V] logits.</summary>
    public double LogitDiff(Tensor logits) =>
        logits[0, End, Pair.AnswerToken].item<float>() - logits[0, End, Pair.WrongAnswerToken].item<float>();

    /// <summary>The logit difference of a forward pass on <paramref name="tokens"/> with <paramref name="hooks"/>.</summary>
    public double LogitDiff(Tensor tokens, HookSet? hooks)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return LogitDiff(Model.Forward(tokens, hooks));
    }

    public string Describe() =>
        $"clean:   {Pair.Clean}\ncorrupt: {Pair.Corrupt}\nanswer '{Pair.IndirectObject}' (IO, position {Positions.IndirectObject}) vs '{Pair.Subject}' " +
        $"(S, positions {Positions.Subject1} and {Positions.Subject2}); the model predicts at position {End}";

    public void Dispose()
    {
        Prompts.Clean.Dispose();
        Prompts.Corrupt.Dispose();
        _loaded.Dispose();
    }
}
