using System.Text.RegularExpressions;
using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// HuggingFace checkpoint folders (<c>config.json</c> + safetensors) for GPT-2 and GPT-NeoX/Pythia,
/// converted to TransformerLens layout on load, one tensor at a time.
/// </summary>
public static partial class HuggingFaceCheckpoint
{
    /// <summary>Whether <paramref name="config"/> describes a model this loader understands.</summary>
    public static bool Recognises(ConfigJson config) => ModelType(config) is "gpt2" or "gpt_neox";

    static string? ModelType(ConfigJson config)
    {
        string? type = config.OptionalString("model_type");
        if (type != null) return type;
        var archs = config.StringList("architectures");
        if (archs.Contains("GPT2LMHeadModel")) return "gpt2";
        if (archs.Contains("GPTNeoXForCausalLM")) return "gpt_neox";
        return null;
    }

    /// <summary>Builds the model config from a HuggingFace <c>config.json</c>.</summary>
    public static TransformerConfig ReadConfig(ConfigJson c, string name)
    {
        try
        {
            return ModelType(c) switch
            {
                "gpt2" => Gpt2Config(c, name),
                "gpt_neox" => NeoXConfig(c, name),
                var other => throw new CheckpointException($"{c.Path}: model_type '{other ?? "(none)"}' is not supported (supported: gpt2, gpt_neox)."),
            };
        }
        catch (ArgumentException e) // TransformerConfig.Validate: an inconsistent combination of fields
        {
            throw new CheckpointException($"{c.Path}: {e.Message}", e);
        }
    }

    static ActivationFunction ParseActivation(ConfigJson c, string key, string fallback) => (c.OptionalString(key) ?? fallback) switch
    {
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => ActivationFunction.GeluNew,
        "gelu" => ActivationFunction.Gelu,
        "relu" => ActivationFunction.Relu,
        var other => throw new CheckpointException($"{c.Path}: activation '{other}' is not supported (gelu_new, gelu, relu)."),
    };

    static TransformerConfig Gpt2Config(ConfigJson c, string name)
    {
        if (c.OptionalBool("scale_attn_by_inverse_layer_idx") == true)
            throw new CheckpointException($"{c.Path}: scale_attn_by_inverse_layer_idx=true is not supported.");
        if (c.OptionalBool("scale_attn_weights") == false)
            throw new CheckpointException($"{c.Path}: scale_attn_weights=false is not supported.");
        int d = c.PositiveInt("n_embd"), h = c.PositiveInt("n_head");
        if (d % h != 0) throw new CheckpointException($"{c.Path}: n_embd {d} is not divisible by n_head {h}.");
        int inner = c.OptionalInt("n_inner") ?? 4 * d;
        if (inner <= 0) throw new CheckpointException($"{c.Path}: n_inner {inner} must be positive.");
        return new TransformerConfig
        {
            Name = name,
            Architecture = Architecture.Gpt2,
            NLayers = c.PositiveInt("n_layer", 1024),
            DModel = d,
            NHeads = h,
            DHead = d / h,
            DMlp = inner,
            DVocab = c.PositiveInt("vocab_size"),
            NCtx = c.Has("n_positions") ? c.PositiveInt("n_positions", 1 << 20) : c.PositiveInt("n_ctx", 1 << 20),
            Activation = ParseActivation(c, "activation_function", "gelu_new"),
            LayerNormEps = c.OptionalDouble("layer_norm_epsilon") ?? 1e-5,
            Positional = PositionalEmbedding.Learned,
            TiedEmbeddings = c.OptionalBool("tie_word_embeddings") ?? true,
            BosTokenId = c.OptionalInt("bos_token_id"),
        }.Validate();
    }

    static TransformerConfig NeoXConfig(ConfigJson c, string name)
    {
        int d = c.PositiveInt("hidden_size"), h = c.PositiveInt("num_attention_heads");
        if (d % h != 0) throw new CheckpointException($"{c.Path}: hidden_size {d} is not divisible by num_attention_heads {h}.");
        int dh = d / h;
        string? ropeType = c.OptionalString("rope_parameters.rope_type") ?? c.OptionalString("rope_scaling.rope_type");
        if (ropeType != null && ropeType != "default")
            throw new CheckpointException($"{c.Path}: rope_type '{ropeType}' is not supported (only 'default').");
        // Two spellings: transformers 5 nests them under rope_parameters; older Pythia configs use rotary_pct / rotary_emb_base.
        double pct = c.OptionalDouble("rope_parameters.partial_rotary_factor") ?? c.OptionalDouble("rotary_pct") ?? c.OptionalDouble("partial_rotary_factor") ?? 0.25;
        double theta = c.OptionalDouble("rope_parameters.rope_theta") ?? c.OptionalDouble("rotary_emb_base") ?? c.OptionalDouble("rope_theta") ?? 10000.0;
        if (pct <= 0 || pct > 1) throw new CheckpointException($"{c.Path}: rotary fraction {pct} must be in (0, 1].");
        return new TransformerConfig
        {
            Name = name,
            Architecture = Architecture.GptNeoX,
            NLayers = c.PositiveInt("num_hidden_layers", 1024),
            DModel = d,
            NHeads = h,
            DHead = dh,
            DMlp = c.PositiveInt("intermediate_size"),
            DVocab = c.PositiveInt("vocab_size"),
            NCtx = c.PositiveInt("max_position_embeddings", 1 << 20),
            Activation = ParseActivation(c, "hidden_act", "gelu"),
            LayerNormEps = c.OptionalDouble("layer_norm_eps") ?? 1e-5,
            Positional = PositionalEmbedding.Rotary,
            RotaryDim = (int)(dh * pct),
            RotaryBase = theta,
            ParallelAttnMlp = c.OptionalBool("use_parallel_residual") ?? true,
            TiedEmbeddings = c.OptionalBool("tie_word_embeddings") ?? false,
            BosTokenId = c.OptionalInt("bos_token_id"),
        }.Validate();
    }

    /// <summary>Loads a HuggingFace folder into a new model on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static HookedTransformer Load(string folder, ConfigJson configJson, Device device, ScalarType dtype, string? name = null)
    {
        var config = ReadConfig(configJson, name ?? System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(folder)));
        using var files = WeightFiles.Open(folder);
        bool attentionBias = configJson.OptionalBool("attention_bias") ?? true;
        // Names, shapes and dtypes are checked against the config before the model's memory is allocated, then the
        // total size (a config that asks for far more than the checkpoint holds fails here, not in the allocator).
        if (config.Architecture == Architecture.Gpt2) LoadGpt2(files, config, null);
        else LoadNeoX(files, config, null, attentionBias);
        SizeCheck.EnsurePlausible(config, files, configJson.Path);
        var model = new HookedTransformer(config, device, dtype);
        try
        {
            var assigner = new WeightAssigner(model, folder);
            if (config.Architecture == Architecture.Gpt2) LoadGpt2(files, config, assigner);
            else LoadNeoX(files, config, assigner, attentionBias);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Maps one checkpoint tensor onto TransformerLens parameters; returns false for tensors to ignore.</summary>
    delegate bool TensorRule(Match m, Tensor t, string from);

    /// <summary>Checks every tensor against the rules and, unless <paramref name="assigner"/> is null (a dry run), assigns it.</summary>
    static void Apply(WeightFiles files, WeightAssigner? assigner, IReadOnlyList<(Regex Pattern, Func<Match, long[]?> ExpectedShape, TensorRule Rule)> rules, Func<string, string> stripPrefix)
    {
        foreach (var name in files.Names.OrderBy(n => n, StringComparer.Ordinal))
        {
            string key = stripPrefix(name);
            var rule = rules.Select(r => (r, m: r.Pattern.Match(key))).FirstOrDefault(x => x.m.Success);
            if (rule.m is null)
                throw new CheckpointException($"{files.Folder}: unexpected tensor '{name}' (not part of this architecture or beyond the configured layers).");
            var expected = rule.r.ExpectedShape(rule.m);
            var entry = files.Describe(name);
            if (expected != null && !entry.Shape.SequenceEqual(expected))
                throw new CheckpointException($"{files.Folder}: tensor '{name}' has shape [{string.Join(", ", entry.Shape)}] but the config implies [{string.Join(", ", expected)}].");
            if (expected == null) continue; // ignored buffer
            if (entry.DType is not ("F32" or "F16" or "BF16" or "F64"))
                throw new CheckpointException($"{files.Folder}: tensor '{name}' has dtype {entry.DType}; weights must be F32, F16, BF16 or F64.");
            if (assigner is null) continue;
            using var scope = NewDisposeScope();
            rule.r.Rule(rule.m, files.Read(name), name);
        }
    }

    static int Layer(Match m, TransformerConfig c, string folder)
    {
        int l = int.Parse(m.Groups["l"].Value);
        if (l >= c.NLayers) throw new CheckpointException($"{folder}: tensor for layer {l} but the config has {c.NLayers} layers.");
        return l;
    }

    static void LoadGpt2(WeightFiles files, TransformerConfig c, WeightAssigner? assigner)
    {
        var a = assigner!; // the rules run only when assigning
        int D = c.DModel, H = c.NHeads, dh = c.DHead, M = c.DMlp;
        string P(Match m) => $"blocks.{Layer(m, c, files.Folder)}.";
        var rules = new List<(Regex, Func<Match, long[]?>, TensorRule)>
        {
            (new Regex(@"^wte\.weight$"), _ => new long[] { c.DVocab, D }, (m, t, f) => { a.Assign("embed.W_E", t, f); return true; }),
            (new Regex(@"^wpe\.weight$"), _ => new long[] { c.NCtx, D }, (m, t, f) => { a.Assign("pos_embed.W_pos", t, f); return true; }),
            (new Regex(@"^ln_f\.weight$"), _ => new long[] { D }, (m, t, f) => { a.Assign("ln_final.w", t, f); return true; }),
            (new Regex(@"^ln_f\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign("ln_final.b", t, f); return true; }),
            (new Regex(@"^lm_head\.weight$"), _ => new long[] { c.DVocab, D }, (m, t, f) =>
            {
                if (!c.TiedEmbeddings) a.Assign("unembed.W_U", t.t(), f);
                return true;
            }),
            (new Regex(@"^h\.(?<l>\d+)\.attn\.(bias|masked_bias)$"), _ => null, (m, t, f) => false),
            (new Regex(@"^h\.(?<l>\d+)\.ln_1\.weight$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln1.w", t, f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.ln_1\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln1.b", t, f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.ln_2\.weight$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln2.w", t, f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.ln_2\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln2.b", t, f); return true; }),
            // Conv1D stores [in, out]; c_attn's columns are Q | K | V, each split into heads.
            (new Regex(@"^h\.(?<l>\d+)\.attn\.c_attn\.weight$"), _ => new long[] { D, 3 * H * dh }, (m, t, f) =>
            {
                var parts = t.split(H * dh, 1);
                string[] names = { "attn.W_Q", "attn.W_K", "attn.W_V" };
                for (int i = 0; i < 3; i++) a.Assign(P(m) + names[i], parts[i].reshape(D, H, dh).permute(1, 0, 2), f);
                return true;
            }),
            (new Regex(@"^h\.(?<l>\d+)\.attn\.c_attn\.bias$"), _ => new long[] { 3 * H * dh }, (m, t, f) =>
            {
                var parts = t.split(H * dh, 0);
                string[] names = { "attn.b_Q", "attn.b_K", "attn.b_V" };
                for (int i = 0; i < 3; i++) a.Assign(P(m) + names[i], parts[i].reshape(H, dh), f);
                return true;
            }),
            (new Regex(@"^h\.(?<l>\d+)\.attn\.c_proj\.weight$"), _ => new long[] { H * dh, D }, (m, t, f) => { a.Assign(P(m) + "attn.W_O", t.reshape(H, dh, D), f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.attn\.c_proj\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "attn.b_O", t, f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.mlp\.c_fc\.weight$"), _ => new long[] { D, M }, (m, t, f) => { a.Assign(P(m) + "mlp.W_in", t, f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.mlp\.c_fc\.bias$"), _ => new long[] { M }, (m, t, f) => { a.Assign(P(m) + "mlp.b_in", t, f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.mlp\.c_proj\.weight$"), _ => new long[] { M, D }, (m, t, f) => { a.Assign(P(m) + "mlp.W_out", t, f); return true; }),
            (new Regex(@"^h\.(?<l>\d+)\.mlp\.c_proj\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "mlp.b_out", t, f); return true; }),
        };
        // The original hub checkpoint has no "transformer." prefix; exports from GPT2LMHeadModel do.
        Apply(files, assigner, rules, n => n.StartsWith("transformer.", StringComparison.Ordinal) ? n["transformer.".Length..] : n);
        if (assigner is null) return;
        a.Fill("unembed.b_U", 0.0);
        a.EnsureComplete(tl => Gpt2SourceName(tl));
    }

    static string Gpt2SourceName(string tl)
    {
        var m = Regex.Match(tl, @"^blocks\.(\d+)\.(.+)$");
        if (!m.Success)
            return tl switch
            {
                "embed.W_E" => "wte.weight",
                "pos_embed.W_pos" => "wpe.weight",
                "ln_final.w" => "ln_f.weight",
                "ln_final.b" => "ln_f.bias",
                "unembed.W_U" => "lm_head.weight",
                _ => tl,
            };
        string h = $"h.{m.Groups[1].Value}.";
        return m.Groups[2].Value switch
        {
            "ln1.w" => h + "ln_1.weight", "ln1.b" => h + "ln_1.bias", "ln2.w" => h + "ln_2.weight", "ln2.b" => h + "ln_2.bias",
            "attn.W_Q" or "attn.W_K" or "attn.W_V" => h + "attn.c_attn.weight",
            "attn.b_Q" or "attn.b_K" or "attn.b_V" => h + "attn.c_attn.bias",
            "attn.W_O" => h + "attn.c_proj.weight", "attn.b_O" => h + "attn.c_proj.bias",
            "mlp.W_in" => h + "mlp.c_fc.weight", "mlp.b_in" => h + "mlp.c_fc.bias",
            "mlp.W_out" => h + "mlp.c_proj.weight", "mlp.b_out" => h + "mlp.c_proj.bias",
            var other => h + other,
        };
    }

    static void LoadNeoX(WeightFiles files, TransformerConfig c, WeightAssigner? assigner, bool attentionBias)
    {
        var a = assigner!; // the rules run only when assigning
        int D = c.DModel, H = c.NHeads, dh = c.DHead, M = c.DMlp;
        string P(Match m) => $"blocks.{Layer(m, c, files.Folder)}.";
        const string L = @"^gpt_neox\.layers\.(?<l>\d+)\.";
        var rules = new List<(Regex, Func<Match, long[]?>, TensorRule)>
        {
            (new Regex(@"^gpt_neox\.embed_in\.weight$"), _ => new long[] { c.DVocab, D }, (m, t, f) => { a.Assign("embed.W_E", t, f); return true; }),
            (new Regex(@"^gpt_neox\.final_layer_norm\.weight$"), _ => new long[] { D }, (m, t, f) => { a.Assign("ln_final.w", t, f); return true; }),
            (new Regex(@"^gpt_neox\.final_layer_norm\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign("ln_final.b", t, f); return true; }),
            (new Regex(@"^embed_out\.weight$"), _ => new long[] { c.OutputVocab, D }, (m, t, f) =>
            {
                if (!c.TiedEmbeddings) a.Assign("unembed.W_U", t.t(), f);
                return true;
            }),
            (new Regex(L + @"attention\.(bias|masked_bias|rotary_emb\.inv_freq)$"), _ => null, (m, t, f) => false),
            (new Regex(L + @"input_layernorm\.weight$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln1.w", t, f); return true; }),
            (new Regex(L + @"input_layernorm\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln1.b", t, f); return true; }),
            (new Regex(L + @"post_attention_layernorm\.weight$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln2.w", t, f); return true; }),
            (new Regex(L + @"post_attention_layernorm\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "ln2.b", t, f); return true; }),
            // nn.Linear [out, in]; output rows ordered (head, {q, k, v}, d_head).
            (new Regex(L + @"attention\.query_key_value\.weight$"), _ => new long[] { 3 * H * dh, D }, (m, t, f) =>
            {
                var w = t.reshape(H, 3, dh, D);
                string[] names = { "attn.W_Q", "attn.W_K", "attn.W_V" };
                for (int i = 0; i < 3; i++) a.Assign(P(m) + names[i], w.select(1, i).transpose(1, 2), f);
                return true;
            }),
            (new Regex(L + @"attention\.query_key_value\.bias$"), _ => new long[] { 3 * H * dh }, (m, t, f) =>
            {
                var b = t.reshape(H, 3, dh);
                string[] names = { "attn.b_Q", "attn.b_K", "attn.b_V" };
                for (int i = 0; i < 3; i++) a.Assign(P(m) + names[i], b.select(1, i), f);
                return true;
            }),
            (new Regex(L + @"attention\.dense\.weight$"), _ => new long[] { D, H * dh }, (m, t, f) => { a.Assign(P(m) + "attn.W_O", t.t().reshape(H, dh, D), f); return true; }),
            (new Regex(L + @"attention\.dense\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "attn.b_O", t, f); return true; }),
            (new Regex(L + @"mlp\.dense_h_to_4h\.weight$"), _ => new long[] { M, D }, (m, t, f) => { a.Assign(P(m) + "mlp.W_in", t.t(), f); return true; }),
            (new Regex(L + @"mlp\.dense_h_to_4h\.bias$"), _ => new long[] { M }, (m, t, f) => { a.Assign(P(m) + "mlp.b_in", t, f); return true; }),
            (new Regex(L + @"mlp\.dense_4h_to_h\.weight$"), _ => new long[] { D, M }, (m, t, f) => { a.Assign(P(m) + "mlp.W_out", t.t(), f); return true; }),
            (new Regex(L + @"mlp\.dense_4h_to_h\.bias$"), _ => new long[] { D }, (m, t, f) => { a.Assign(P(m) + "mlp.b_out", t, f); return true; }),
        };
        Apply(files, assigner, rules, n => n);
        if (assigner is null) return;
        if (!attentionBias)
            for (int l = 0; l < c.NLayers; l++)
                foreach (var b in new[] { "b_Q", "b_K", "b_V", "b_O" })
                    a.Fill($"blocks.{l}.attn.{b}", 0.0);
        a.Fill("unembed.b_U", 0.0);
        a.EnsureComplete(NeoXSourceName);
    }

    static string NeoXSourceName(string tl)
    {
        var m = Regex.Match(tl, @"^blocks\.(\d+)\.(.+)$");
        if (!m.Success)
            return tl switch
            {
                "embed.W_E" => "gpt_neox.embed_in.weight",
                "ln_final.w" => "gpt_neox.final_layer_norm.weight",
                "ln_final.b" => "gpt_neox.final_layer_norm.bias",
                "unembed.W_U" => "embed_out.weight",
                _ => tl,
            };
        string p = $"gpt_neox.layers.{m.Groups[1].Value}.";
        return m.Groups[2].Value switch
        {
            "ln1.w" => p + "input_layernorm.weight", "ln1.b" => p + "input_layernorm.bias",
            "ln2.w" => p + "post_attention_layernorm.weight", "ln2.b" => p + "post_attention_layernorm.bias",
            "attn.W_Q" or "attn.W_K" or "attn.W_V" => p + "attention.query_key_value.weight",
            "attn.b_Q" or "attn.b_K" or "attn.b_V" => p + "attention.query_key_value.bias",
            "attn.W_O" => p + "attention.dense.weight", "attn.b_O" => p + "attention.dense.bias",
            "mlp.W_in" => p + "mlp.dense_h_to_4h.weight", "mlp.b_in" => p + "mlp.dense_h_to_4h.bias",
            "mlp.W_out" => p + "mlp.dense_4h_to_h.weight", "mlp.b_out" => p + "mlp.dense_4h_to_h.bias",
            var other => p + other,
        };
    }
}
