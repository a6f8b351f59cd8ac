using System.Text.Json.Nodes;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// Saves an attention-only <see cref="HookedTransformer"/> as a TransformerLens checkpoint folder: a TransformerLens
/// <c>config.json</c> (<c>attn_only</c>, LayerNorm, learned positions) and <c>model.safetensors</c> holding the state
/// dict under TransformerLens names (which are this model's parameter names) — the inverse of
/// <see cref="TransformerLensCheckpoint"/>, the format attn-only-4l ships in (there as a <c>.pth</c>).
/// </summary>
public static class TransformerLensCheckpointWriter
{
    /// <summary>Writes <c>config.json</c> and <c>model.safetensors</c> into <paramref name="folder"/> (created if needed); each file appears only once complete.</summary>
    public static void Save(HookedTransformer model, string folder)
    {
        var c = model.Config;
        if (c.Architecture != Architecture.AttentionOnly || !c.AttentionOnly || !c.UseLayerNorm || !c.Causal || c.Positional != PositionalEmbedding.Learned || c.TiedEmbeddings)
            throw new ArgumentException($"Model '{c.Name}' is not an attention-only model with LayerNorm, learned positions and an untied unembedding; only those are written as TransformerLens checkpoints.");
        var config = new JsonObject
        {
            ["model_name"] = c.Name,
            ["n_layers"] = c.NLayers,
            ["d_model"] = c.DModel,
            ["n_heads"] = c.NHeads,
            ["d_head"] = c.DHead,
            ["d_vocab"] = c.DVocab,
            ["d_vocab_out"] = c.OutputVocab,
            ["n_ctx"] = c.NCtx,
            ["attn_only"] = true,
            ["normalization_type"] = "LN",
            ["positional_embedding_type"] = "standard",
            ["act_fn"] = "gelu_new",
            ["eps"] = c.LayerNormEps,
        };
        if (c.BosTokenId is int bos) config["bos_token_id"] = bos;
        using var scope = NewDisposeScope();
        var tensors = model.named_parameters().Select(p => (p.name, p.parameter.detach().to(ScalarType.Float32))).ToList();
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicTextFile.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
