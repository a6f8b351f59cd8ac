using System.Text.Json;
using System.Text.Json.Nodes;
using Workbook.Model;
using Workbook.Progress;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// The mark a random-weights stand-in carries in its <c>config.json</c> (<c>"workbook_random_weights"</c>): which real
/// model it copies the shape of, and the seed. Loading a marked checkpoint sets <see cref="LoadedModel.RandomWeights"/>, and
/// every report, figure and notebook built on it says "random weights".
/// </summary>
public sealed record RandomWeightsInfo(string Like, int Seed, string StorageDType)
{
    public const string ConfigKey = "workbook_random_weights";

    public override string ToString() => $"random weights (a stand-in with {Like}'s configuration, seed {Seed}; not the real model)";

    /// <summary>The mark in a checkpoint folder's (or a config file's) <c>config.json</c>; null when unmarked or unreadable (the loader reports broken configs).</summary>
    public static RandomWeightsInfo? Read(string folderOrConfig)
    {
        string path = Directory.Exists(folderOrConfig) ? Path.Combine(folderOrConfig, "config.json") : folderOrConfig;
        try
        {
            // A bounded read of a regular file: a FIFO or a device named config.json in a handed-over cache must not hang or fill memory.
            using var doc = Util.JsonInput.ReadFile(path, (message, inner) => new IOException(message, inner), maxBytes: Util.JsonInput.MaxSmallFileBytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty(ConfigKey, out var mark) || mark.ValueKind != JsonValueKind.Object)
                return null;
            string like = mark.TryGetProperty("like", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString()! : "unknown";
            int seed = mark.TryGetProperty("seed", out var s) && s.TryGetInt32(out int v) ? v : 0;
            string dtype = mark.TryGetProperty("storage_dtype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : "float32";
            return new RandomWeightsInfo(like, seed, dtype);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }
}

/// <summary>What <see cref="RandomStandIns.Write"/> wrote.</summary>
public sealed record StandInFiles(RandomWeightsInfo Info, string Folder, IReadOnlyList<string> Files, long Bytes, string WeightsSha256);

/// <summary>
/// Checkpoints with the exact configuration of the paper's models and seeded random weights, for benchmarks and offline
/// smoke tests at the paper's scale where the real weights cannot be downloaded: <c>gpt2</c> (a HuggingFace GPT-2
/// folder), <c>attn-only-4l</c> (a TransformerLens config with its weights as safetensors) and <c>pythia-2.8b-deduped</c>
/// (a HuggingFace GPT-NeoX folder, float16 on disk like the hub's). Weights are written tensor by tensor, so memory holds
/// one tensor (the 0.5 GB embedding of Pythia) whatever the checkpoint's size. The config is marked
/// (<see cref="RandomWeightsInfo"/>) so that no result can be taken for the real model's.
/// </summary>
public static class RandomStandIns
{
    /// <summary>A stand-in: the real model's config, how its checkpoint is laid out, and its dtype on disk.</summary>
    sealed record Layout(string Like, TransformerConfig Config, ScalarType DefaultStorage, Func<TransformerConfig, JsonObject> ConfigJson,
        Func<TransformerConfig, IReadOnlyList<(TensorSpec Spec, Init Init)>> Tensors);

    /// <summary>How a tensor is initialised: N(0, std²), all ones (LayerNorm gains) or zeros (biases).</summary>
    readonly record struct Init(double Std, double Constant = 0)
    {
        public static Init Normal(double std) => new(std);
        public static Init Ones => new(0, 1);
        public static Init Zeros => new(0, 0);
    }

    static readonly Layout[] Layouts =
    {
        new("gpt2", KnownConfigs.Gpt2Small, ScalarType.Float32, Gpt2Config, Gpt2Tensors),
        new("attn-only-4l", KnownConfigs.AttnOnly4L, ScalarType.Float32, TransformerLensConfig, TransformerLensTensors),
        new("pythia-2.8b-deduped", KnownConfigs.Pythia28B, ScalarType.Float16, NeoXConfig, NeoXTensors),
    };

    /// <summary>The models a stand-in can be made of.</summary>
    public static IReadOnlyList<string> Names { get; } = Layouts.Select(l => l.Like).ToArray();

    static Layout Get(string like) =>
        Layouts.FirstOrDefault(l => string.Equals(l.Like, like, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"There is no random stand-in of '{like}'; stand-ins exist for {string.Join(", ", Names)}." +
                                       Util.NearestNames.DidYouMean(like, Names));

    /// <summary>The canonical name of a stand-in (<c>gpt2</c>, <c>attn-only-4l</c>, <c>pythia-2.8b-deduped</c>); an error naming the choices otherwise.</summary>
    public static string Canonical(string like) => Get(like).Like;

    /// <summary>The real model's configuration, as the stand-in has it.</summary>
    public static TransformerConfig ConfigOf(string like) => Get(like).Config;

    /// <summary>The dtype the real checkpoint is stored in (float16 for Pythia, float32 otherwise).</summary>
    public static ScalarType DefaultStorage(string like) => Get(like).DefaultStorage;

    /// <summary>Bytes the weights take on disk in <paramref name="storage"/>.</summary>
    public static long WeightBytes(string like, ScalarType? storage = null)
    {
        var layout = Get(like);
        int size = (storage ?? layout.DefaultStorage) == ScalarType.Float32 ? 4 : 2;
        return layout.Tensors(layout.Config).Sum(t => t.Spec.ElementCount) * size;
    }

    /// <summary>
    /// Writes the stand-in into <paramref name="folder"/>: <c>config.json</c> (marked), <c>model.safetensors</c> and a
    /// <c>README.md</c> saying what it is. <paramref name="storage"/>: float32 or float16 (null: the real checkpoint's).
    /// <paramref name="progress"/> counts tensors.
    /// </summary>
    public static StandInFiles Write(string like, int seed, string folder, ScalarType? storage = null, IProgress<WorkProgress>? progress = null)
    {
        var layout = Get(like);
        var dtype = storage ?? layout.DefaultStorage;
        if (dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"Stand-in weights are stored as float32, float16 or bfloat16, not {dtype}.");
        var info = new RandomWeightsInfo(layout.Like, seed, Precision.Name(dtype));
        var tensors = layout.Tensors(layout.Config);
        Directory.CreateDirectory(folder);
        var tracker = new ProgressTracker(progress, $"writing {layout.Like} stand-in", tensors.Count, "tensors");
        tracker.Start();
        string weights = Path.Combine(folder, "model.safetensors");
        string sha = SafetensorsWriter.WriteStreaming(weights, tensors.Select(t => t.Spec with { DType = dtype }).ToList(),
            (spec, i) => Values(tensors[i].Spec, tensors[i].Init, seed, i).to(dtype),
            new Dictionary<string, string> { ["format"] = "pt", [RandomWeightsInfo.ConfigKey] = info.ToString() }, sha256: true,
            afterTensor: (i, spec) => tracker.Advance(1, spec.Name))!;
        var config = layout.ConfigJson(layout.Config);
        config["torch_dtype"] = Precision.Name(dtype);
        config[RandomWeightsInfo.ConfigKey] = new JsonObject
        {
            ["like"] = layout.Like, ["seed"] = seed, ["storage_dtype"] = Precision.Name(dtype),
            ["note"] = "Seeded random weights with this model's exact configuration, written by `workbook models random`. NOT the real model: results on it mean nothing about the real one.",
        };
        AtomicTextFile.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "README.md"),
            $"# Random weights: a stand-in for {layout.Like}\n\nWritten by `workbook models random --like {layout.Like} --seed {seed}`: the real model's exact configuration " +
            $"with seeded random weights ({Precision.Name(dtype)} on disk). It exists for benchmarks and offline smoke tests at the paper's scale. " +
            "It is not the real model; every report and figure made with it says \"random weights\". `workbook models pull` replaces it with the real checkpoint.\n");
        tracker.Complete();
        var files = new[] { "config.json", "model.safetensors", "README.md" };
        return new StandInFiles(info, folder, files, files.Sum(f => new FileInfo(Path.Combine(folder, f)).Length), sha);
    }

    /// <summary>Tensor <paramref name="index"/>'s values: its own generator, seeded from the stand-in's seed and its index, so any tensor can be made alone.</summary>
    static Tensor Values(TensorSpec spec, Init init, int seed, int index)
    {
        if (init.Std == 0) return full(spec.Shape, init.Constant, dtype: ScalarType.Float32);
        using var generator = new TorchSharp.torch.Generator((ulong)seed * 1_000_003UL + (ulong)index + 1, device: CPU);
        return randn(spec.Shape, dtype: ScalarType.Float32, generator: generator).mul_(init.Std);
    }

    // GPT-2's initialisation: N(0, 0.02²), residual-writing projections scaled by 1/sqrt(2 · layers).
    static double Std => 0.02;
    static double ResidualStd(TransformerConfig c) => 0.02 / Math.Sqrt(2.0 * c.NLayers);

    static IReadOnlyList<(TensorSpec, Init)> Gpt2Tensors(TransformerConfig c)
    {
        int D = c.DModel, M = c.DMlp;
        var t = new List<(TensorSpec, Init)>
        {
            (Spec("wte.weight", c.DVocab, D), Init.Normal(Std)),
            (Spec("wpe.weight", c.NCtx, D), Init.Normal(0.01)),
        };
        for (int l = 0; l < c.NLayers; l++)
        {
            string p = $"h.{l}.";
            t.Add((Spec(p + "ln_1.weight", D), Init.Ones));
            t.Add((Spec(p + "ln_1.bias", D), Init.Zeros));
            t.Add((Spec(p + "attn.c_attn.weight", D, 3 * D), Init.Normal(Std)));
            t.Add((Spec(p + "attn.c_attn.bias", 3 * D), Init.Zeros));
            t.Add((Spec(p + "attn.c_proj.weight", D, D), Init.Normal(ResidualStd(c))));
            t.Add((Spec(p + "attn.c_proj.bias", D), Init.Zeros));
            t.Add((Spec(p + "ln_2.weight", D), Init.Ones));
            t.Add((Spec(p + "ln_2.bias", D), Init.Zeros));
            t.Add((Spec(p + "mlp.c_fc.weight", D, M), Init.Normal(Std)));
            t.Add((Spec(p + "mlp.c_fc.bias", M), Init.Zeros));
            t.Add((Spec(p + "mlp.c_proj.weight", M, D), Init.Normal(ResidualStd(c))));
            t.Add((Spec(p + "mlp.c_proj.bias", D), Init.Zeros));
        }
        t.Add((Spec("ln_f.weight", D), Init.Ones));
        t.Add((Spec("ln_f.bias", D), Init.Zeros));
        return t;
    }

    static JsonObject Gpt2Config(TransformerConfig c) => new()
    {
        ["activation_function"] = "gelu_new", ["architectures"] = new JsonArray("GPT2LMHeadModel"), ["attn_pdrop"] = 0.1,
        ["bos_token_id"] = c.BosTokenId, ["eos_token_id"] = c.BosTokenId, ["embd_pdrop"] = 0.1, ["initializer_range"] = 0.02,
        ["layer_norm_epsilon"] = c.LayerNormEps, ["model_type"] = "gpt2", ["n_ctx"] = c.NCtx, ["n_embd"] = c.DModel, ["n_head"] = c.NHeads,
        ["n_inner"] = null, ["n_layer"] = c.NLayers, ["n_positions"] = c.NCtx, ["resid_pdrop"] = 0.1, ["vocab_size"] = c.DVocab,
    };

    static IReadOnlyList<(TensorSpec, Init)> TransformerLensTensors(TransformerConfig c)
    {
        int D = c.DModel, H = c.NHeads, dh = c.DHead;
        var t = new List<(TensorSpec, Init)>
        {
            (Spec("embed.W_E", c.DVocab, D), Init.Normal(Std)),
            (Spec("pos_embed.W_pos", c.NCtx, D), Init.Normal(Std)),
        };
        for (int l = 0; l < c.NLayers; l++)
        {
            string p = $"blocks.{l}.";
            t.Add((Spec(p + "ln1.w", D), Init.Ones));
            t.Add((Spec(p + "ln1.b", D), Init.Zeros));
            foreach (var m in new[] { "W_Q", "W_K", "W_V" }) t.Add((Spec(p + "attn." + m, H, D, dh), Init.Normal(Std)));
            t.Add((Spec(p + "attn.W_O", H, dh, D), Init.Normal(ResidualStd(c))));
            foreach (var b in new[] { "b_Q", "b_K", "b_V" }) t.Add((Spec(p + "attn." + b, H, dh), Init.Zeros));
            t.Add((Spec(p + "attn.b_O", D), Init.Zeros));
        }
        t.Add((Spec("ln_final.w", D), Init.Ones));
        t.Add((Spec("ln_final.b", D), Init.Zeros));
        t.Add((Spec("unembed.W_U", D, c.DVocab), Init.Normal(Std)));
        t.Add((Spec("unembed.b_U", c.DVocab), Init.Zeros));
        return t;
    }

    // The TransformerLens config of NeelNanda/Attn_Only_4L512W_C4_Code (spec E.2): its tokenizer lives in another repository.
    static JsonObject TransformerLensConfig(TransformerConfig c) => new()
    {
        ["model_name"] = "Attn_Only_4L512W_C4_Code", ["n_layers"] = c.NLayers, ["d_model"] = c.DModel, ["n_ctx"] = c.NCtx, ["d_head"] = c.DHead,
        ["n_heads"] = c.NHeads, ["d_mlp"] = 2048, ["act_fn"] = "solu_ln", ["d_vocab"] = c.DVocab, ["eps"] = c.LayerNormEps,
        ["use_attn_result"] = false, ["use_attn_scale"] = true, ["normalization_type"] = "LN", ["attn_only"] = true,
        ["positional_embedding_type"] = "standard", ["tokenizer_name"] = "NeelNanda/gpt-neox-tokenizer-digits", ["original_architecture"] = "neel",
    };

    static IReadOnlyList<(TensorSpec, Init)> NeoXTensors(TransformerConfig c)
    {
        int D = c.DModel, M = c.DMlp;
        var t = new List<(TensorSpec, Init)> { (Spec("gpt_neox.embed_in.weight", c.DVocab, D), Init.Normal(Std)) };
        for (int l = 0; l < c.NLayers; l++)
        {
            string p = $"gpt_neox.layers.{l}.";
            t.Add((Spec(p + "input_layernorm.weight", D), Init.Ones));
            t.Add((Spec(p + "input_layernorm.bias", D), Init.Zeros));
            t.Add((Spec(p + "post_attention_layernorm.weight", D), Init.Ones));
            t.Add((Spec(p + "post_attention_layernorm.bias", D), Init.Zeros));
            t.Add((Spec(p + "attention.query_key_value.weight", 3 * D, D), Init.Normal(Std)));
            t.Add((Spec(p + "attention.query_key_value.bias", 3 * D), Init.Zeros));
            t.Add((Spec(p + "attention.dense.weight", D, D), Init.Normal(ResidualStd(c))));
            t.Add((Spec(p + "attention.dense.bias", D), Init.Zeros));
            t.Add((Spec(p + "mlp.dense_h_to_4h.weight", M, D), Init.Normal(Std)));
            t.Add((Spec(p + "mlp.dense_h_to_4h.bias", M), Init.Zeros));
            t.Add((Spec(p + "mlp.dense_4h_to_h.weight", D, M), Init.Normal(ResidualStd(c))));
            t.Add((Spec(p + "mlp.dense_4h_to_h.bias", D), Init.Zeros));
        }
        t.Add((Spec("gpt_neox.final_layer_norm.weight", D), Init.Ones));
        t.Add((Spec("gpt_neox.final_layer_norm.bias", D), Init.Zeros));
        t.Add((Spec("embed_out.weight", c.DVocab, D), Init.Normal(Std)));
        return t;
    }

    static JsonObject NeoXConfig(TransformerConfig c) => new()
    {
        ["architectures"] = new JsonArray("GPTNeoXForCausalLM"), ["bos_token_id"] = c.BosTokenId, ["eos_token_id"] = c.BosTokenId, ["hidden_act"] = "gelu",
        ["hidden_size"] = c.DModel, ["initializer_range"] = 0.02, ["intermediate_size"] = c.DMlp, ["layer_norm_eps"] = c.LayerNormEps,
        ["max_position_embeddings"] = c.NCtx, ["model_type"] = "gpt_neox", ["num_attention_heads"] = c.NHeads, ["num_hidden_layers"] = c.NLayers,
        ["rotary_emb_base"] = 10000, ["rotary_pct"] = (double)c.RotaryDim / c.DHead, ["tie_word_embeddings"] = false, ["use_cache"] = true,
        ["use_parallel_residual"] = c.ParallelAttnMlp, ["vocab_size"] = c.DVocab,
    };

    static TensorSpec Spec(string name, params long[] shape) => new(name, ScalarType.Float32, shape);
}
