using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// Compares the size a config describes with the values a checkpoint holds, before any memory is allocated for
/// the model: a corrupt or mismatched config.json (say n_embd = 16777216 next to a small checkpoint) must fail
/// with a message, not try to allocate terabytes.
/// </summary>
internal static class SizeCheck
{
    /// <summary>
    /// Values in the model's weight matrices alone (its <c>W_…</c> parameters: embeddings, attention and MLP matrices, an
    /// untied unembedding): every loader requires each of them from the checkpoint, so a checkpoint holding fewer values
    /// cannot fit the config. The shapes come from the model's own declaration, built on the meta device (no memory), so
    /// an architecture with other matrices is counted without changes here.
    /// </summary>
    public static double MatrixValues(TransformerConfig c)
    {
        using var meta = new HookedTransformer(c, new Device(TorchSharp.DeviceType.META));
        return meta.named_parameters()
            .Where(p => p.name[(p.name.LastIndexOf('.') + 1)..].StartsWith("W_", StringComparison.Ordinal))
            .Sum(p => p.parameter.shape.Aggregate(1.0, (a, b) => a * b));
    }

    public static void EnsurePlausible(TransformerConfig config, WeightFiles files, string configPath)
    {
        double needed = MatrixValues(config);
        // What the bytes hold, not what the shapes claim: tensors that view one storage count it once, so a few stored
        // values viewed by many tensors cannot pass for a large model. Twice that is allowed, for a tied unembedding
        // stored as a view of the embedding (as torch.save writes W_U = W_E.T).
        double stored = files.StoredValues;
        if (needed > 2 * stored)
            throw new CheckpointException(
                $"{configPath}: describes a model whose weight matrices alone hold {needed:N0} values, but the checkpoint in {files.Folder} " +
                $"holds {stored:N0} (twice that allowed for tied weights); the config does not belong to these weights (compare its sizes, e.g. the model width, layers and vocabulary, with the tensors' shapes).");
    }
}
