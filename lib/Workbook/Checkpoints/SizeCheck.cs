using Workbook.Model;

namespace Workbook.Checkpoints;

/// <summary>
/// Compares the size a config describes with the values a checkpoint holds, before any memory is allocated for
/// the model: a corrupt or mismatched config.json (say n_embd = 16777216 next to a small checkpoint) must fail
/// with a message, not try to allocate terabytes.
/// </summary>
internal static class SizeCheck
{
    /// <summary>
    /// Values in the model's weight matrices alone (embeddings, attention and MLP matrices, an untied unembedding):
    /// every loader requires each of them from the checkpoint, so a checkpoint holding fewer values cannot fit the config.
    /// </summary>
    public static double MatrixValues(TransformerConfig c)
    {
        double d = c.DModel, perHead = (double)c.NHeads * c.DHead;
        double values = (double)c.DVocab * d;
        if (c.Positional == PositionalEmbedding.Learned) values += (double)c.NCtx * d;
        values += c.NLayers * (4 * perHead * d + (c.HasMlp ? 2.0 * d * c.DMlp : 0));
        if (!c.TiedEmbeddings) values += d * c.OutputVocab;
        return values;
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
