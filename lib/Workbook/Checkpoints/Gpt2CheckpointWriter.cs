using System.Text.Json.Nodes;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// Saves a GPT-2-architecture <see cref="HookedTransformer"/> as a HuggingFace checkpoint folder
/// (<c>config.json</c> with model_type gpt2, <c>model.safetensors</c> with GPT-2's tensor names, no
/// <c>transformer.</c> prefix, Conv1D [in, out] layout) — the inverse of <see cref="HuggingFaceCheckpoint"/>.
/// </summary>
public static class Gpt2CheckpointWriter
{
    /// <summary>
    /// Writes <c>config.json</c> and <c>model.safetensors</c> into <paramref name="folder"/> (created if needed).
    /// Each file appears only once complete. <paramref name="extraConfig"/> adds fields such as token ids.
    /// </summary>
    public static void Save(HookedTransformer model, string folder, IReadOnlyDictionary<string, JsonNode?>? extraConfig = null)
    {
        var c = model.Config;
        if (c.Architecture != Architecture.Gpt2 || !c.UseLayerNorm || !c.Causal || c.Positional != PositionalEmbedding.Learned || c.ParallelAttnMlp || !c.HasMlp)
            throw new ArgumentException($"Model '{c.Name}' is not a GPT-2 architecture model; only those can be saved as a gpt2 checkpoint.");
        if (!c.TiedEmbeddings)
            throw new ArgumentException($"Model '{c.Name}' has an untied unembedding; the gpt2 checkpoint writer writes tied models only.");
        if (model.unembed.b_U.abs().max().item<float>() != 0)
            throw new ArgumentException($"Model '{c.Name}' has a non-zero unembedding bias, which GPT-2 checkpoints cannot hold.");
        string activation = c.Activation switch
        {
            ActivationFunction.GeluNew => "gelu_new",
            ActivationFunction.Gelu => "gelu",
            ActivationFunction.Relu => "relu",
            _ => throw new ArgumentException($"Activation {c.Activation} has no GPT-2 name."),
        };

        using var scope = NewDisposeScope();
        int D = c.DModel, H = c.NHeads, dh = c.DHead;
        var tensors = new List<(string, Tensor)>
        {
            ("wte.weight", model.embed.W_E),
            ("wpe.weight", model.pos_embed!.W_pos),
        };
        for (int l = 0; l < c.NLayers; l++)
        {
            var b = model.blocks[l];
            string p = $"h.{l}.";
            Tensor Columns(Tensor w) => w.permute(1, 0, 2).reshape(D, H * dh);   // [H, D, dh] -> [D, H*dh]
            tensors.Add((p + "ln_1.weight", b.ln1!.w));
            tensors.Add((p + "ln_1.bias", b.ln1.b));
            tensors.Add((p + "attn.c_attn.weight", cat(new[] { Columns(b.attn.W_Q), Columns(b.attn.W_K), Columns(b.attn.W_V) }, 1)));
            tensors.Add((p + "attn.c_attn.bias", cat(new[] { b.attn.b_Q.reshape(-1), b.attn.b_K.reshape(-1), b.attn.b_V.reshape(-1) }, 0)));
            tensors.Add((p + "attn.c_proj.weight", b.attn.W_O.reshape(H * dh, D)));
            tensors.Add((p + "attn.c_proj.bias", b.attn.b_O));
            tensors.Add((p + "ln_2.weight", b.ln2!.w));
            tensors.Add((p + "ln_2.bias", b.ln2.b));
            tensors.Add((p + "mlp.c_fc.weight", b.mlp!.W_in));
            tensors.Add((p + "mlp.c_fc.bias", b.mlp.b_in));
            tensors.Add((p + "mlp.c_proj.weight", b.mlp.W_out));
            tensors.Add((p + "mlp.c_proj.bias", b.mlp.b_out));
        }
        tensors.Add(("ln_f.weight", model.ln_final!.w));
        tensors.Add(("ln_f.bias", model.ln_final.b));

        var config = new JsonObject
        {
            ["model_type"] = "gpt2",
            ["architectures"] = new JsonArray("GPT2LMHeadModel"),
            ["vocab_size"] = c.DVocab,
            ["n_positions"] = c.NCtx,
            ["n_ctx"] = c.NCtx,
            ["n_embd"] = D,
            ["n_layer"] = c.NLayers,
            ["n_head"] = H,
            ["n_inner"] = c.DMlp,
            ["activation_function"] = activation,
            ["layer_norm_epsilon"] = c.LayerNormEps,
            ["tie_word_embeddings"] = true,
            ["scale_attn_weights"] = true,
            ["resid_pdrop"] = 0.0,
            ["embd_pdrop"] = 0.0,
            ["attn_pdrop"] = 0.0,
            ["torch_dtype"] = "float32",
        };
        if (c.BosTokenId is int bos) config["bos_token_id"] = bos;
        if (extraConfig != null)
            foreach (var (k, v) in extraConfig) config[k] = v?.DeepClone();

        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors.Select(t => (t.Item1, t.Item2.detach().to(ScalarType.Float32))).ToList(),
            new Dictionary<string, string> { ["format"] = "pt" });
        AtomicTextFile.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}

/// <summary>Writes a text file so that it appears only once complete: <see cref="Util.AtomicFile"/>, creating the folder first.</summary>
internal static class AtomicTextFile
{
    public static void WriteAllText(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        Util.AtomicFile.WriteAllText(path, text);
    }
}
