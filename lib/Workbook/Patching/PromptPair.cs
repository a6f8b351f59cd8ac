using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// A batch of paired prompts as token ids [batch, seq]: the clean prompts and their corrupt counterparts
/// (for example IOI's ABC prompts). Both must have the same shape: the patching equation pairs positions.
/// </summary>
public sealed record PromptPair
{
    public Tensor Clean { get; }
    public Tensor Corrupt { get; }
    public long BatchSize => Clean.shape[0];
    public int SeqLen => (int)Clean.shape[1];

    public PromptPair(Tensor clean, Tensor corrupt)
    {
        if (clean.dim() != 2 || corrupt.dim() != 2)
            throw new ArgumentException($"Prompts must be token ids [batch, seq]; got clean [{string.Join(", ", clean.shape)}] and corrupt [{string.Join(", ", corrupt.shape)}].");
        if (clean.shape[0] != corrupt.shape[0])
            throw new ArgumentException($"Clean and corrupt batches differ in size: {clean.shape[0]} vs {corrupt.shape[0]} prompts.");
        if (clean.shape[1] != corrupt.shape[1])
            throw new ArgumentException($"Clean and corrupt prompts differ in token length: {clean.shape[1]} vs {corrupt.shape[1]}. Patching pairs positions, so every prompt of a batch must have the same length.");
        Clean = clean;
        Corrupt = corrupt;
    }

    /// <summary>Prompts from token id arrays, placed on <paramref name="device"/> (the model's device; CPU by default).</summary>
    public static PromptPair FromArrays(long[,] clean, long[,] corrupt, Device? device = null) =>
        new(tensor(clean, device: device ?? CPU), tensor(corrupt, device: device ?? CPU));

    /// <summary>The prompts that are run (<paramref name="direction"/>'s input side).</summary>
    public Tensor Input(PatchDirection direction) => direction == PatchDirection.AblateClean ? Clean : Corrupt;

    /// <summary>The prompts that patch values come from for resample and batch-mean ablation.</summary>
    public Tensor Other(PatchDirection direction) => direction == PatchDirection.AblateClean ? Corrupt : Clean;
}
