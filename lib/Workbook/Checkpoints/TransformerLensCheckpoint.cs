using System.Text.RegularExpressions;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// TransformerLens checkpoints as NeelNanda's models ship them (attn-only-4l and friends): a TransformerLens
/// <c>config.json</c> (<c>n_layers</c>, <c>d_model</c>, <c>n_heads</c>, <c>d_head</c>, <c>d_vocab</c>, <c>n_ctx</c>,
/// <c>attn_only</c>, <c>normalization</c>/<c>normalization_type</c>, <c>positional_embedding_type</c>/<c>shortformer_pos</c>,
/// <c>act_fn</c>) and a state dict already in TransformerLens names (<c>*final.pth</c>), which are this model's names.
/// </summary>
public static class TransformerLensCheckpoint
{
    /// <summary>A TransformerLens config: TL field names and no HuggingFace <c>model_type</c>.</summary>
    public static bool Recognises(ConfigJson config) =>
        !config.Has("model_type") && config.Has("d_model") && config.Has("n_layers") && config.Has("n_heads") && config.Has("d_vocab");

    public static TransformerConfig ReadConfig(ConfigJson c, string name)
    {
        try
        {
            return ReadConfigCore(c, name);
        }
        catch (ArgumentException e) // TransformerConfig.Validate: an inconsistent combination of fields
        {
            throw new CheckpointException($"{c.Path}: {e.Message}", e);
        }
    }

    static TransformerConfig ReadConfigCore(ConfigJson c, string name)
    {
        bool attnOnly = c.OptionalBool("attn_only") ?? false;
        string normalization = c.OptionalString("normalization_type") ?? c.OptionalString("normalization") ?? "LN";
        if (normalization is not ("LN" or "LNPre"))
            throw new CheckpointException($"{c.Path}: normalization '{normalization}' is not supported (LN, LNPre).");
        if (c.OptionalBool("final_rms") == true) throw new CheckpointException($"{c.Path}: final_rms=true is not supported.");
        string positional = c.OptionalString("positional_embedding_type")
            ?? (c.OptionalBool("shortformer_pos") == true ? "shortformer" : "standard");
        if (positional != "standard")
            throw new CheckpointException($"{c.Path}: positional_embedding_type '{positional}' is not supported (only 'standard', learned positions added to the residual stream).");
        if (c.OptionalBool("use_attn_scale") == false) throw new CheckpointException($"{c.Path}: use_attn_scale=false is not supported.");
        if (c.OptionalString("attention_dir") is { } dir && dir != "causal")
            throw new CheckpointException($"{c.Path}: attention_dir '{dir}' is not supported (only 'causal').");
        int dModel = c.PositiveInt("d_model"), nHeads = c.PositiveInt("n_heads");
        int dHead = c.OptionalInt("d_head") ?? dModel / nHeads;
        if (dHead <= 0) throw new CheckpointException($"{c.Path}: d_head {dHead} must be positive.");
        int dVocab = c.PositiveInt("d_vocab");
        int dVocabOut = c.OptionalInt("d_vocab_out") ?? dVocab;
        if (dVocabOut <= 0) dVocabOut = dVocab; // TL writes -1 for "same as d_vocab"
        string act = c.OptionalString("act_fn") ?? "gelu_new";
        var activation = act switch
        {
            "gelu_new" or "gelu_fast" or "gelu_pytorch_tanh" => ActivationFunction.GeluNew,
            "gelu" => ActivationFunction.Gelu,
            "relu" => ActivationFunction.Relu,
            _ when attnOnly => ActivationFunction.GeluNew, // unused: no MLPs
            _ => throw new CheckpointException($"{c.Path}: act_fn '{act}' is not supported (gelu_new, gelu, relu; solu_ln only in attention-only models, which have no MLPs)."),
        };
        return new TransformerConfig
        {
            Name = name,
            Architecture = attnOnly ? Architecture.AttentionOnly : Architecture.Gpt2,
            AttentionOnly = attnOnly,
            NLayers = c.PositiveInt("n_layers", 1024),
            DModel = dModel,
            NHeads = nHeads,
            DHead = dHead,
            DMlp = attnOnly ? 0 : c.PositiveInt("d_mlp"),
            DVocab = dVocab,
            DVocabOut = dVocabOut == dVocab ? 0 : dVocabOut,
            NCtx = c.PositiveInt("n_ctx", 1 << 20),
            Activation = activation,
            LayerNormEps = c.OptionalDouble("eps") ?? 1e-5,
            Positional = PositionalEmbedding.Learned,
            TiedEmbeddings = false,
            BosTokenId = c.OptionalInt("bos_token_id"),
        }.Validate();
    }

    static readonly Regex Ignored = new(@"^blocks\.\d+\.attn\.(mask|IGNORE)$");

    public static HookedTransformer Load(string folder, ConfigJson configJson, Device device, ScalarType dtype, string? name = null)
    {
        var config = ReadConfig(configJson, name ?? System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(folder)));
        bool lnPre = (configJson.OptionalString("normalization_type") ?? configJson.OptionalString("normalization")) == "LNPre";
        using var files = WeightFiles.Open(folder);
        SizeCheck.EnsurePlausible(config, files, configJson.Path);
        var model = new HookedTransformer(config, device, dtype);
        try
        {
            var assigner = new WeightAssigner(model, folder);
            var parameters = assigner.ParameterNames.ToHashSet(StringComparer.Ordinal);
            foreach (var tensorName in files.Names.OrderBy(n => n, StringComparer.Ordinal))
            {
                if (Ignored.IsMatch(tensorName)) continue; // causal-mask buffers
                if (!parameters.Contains(tensorName))
                {
                    var layer = Regex.Match(tensorName, @"^blocks\.(\d+)\.");
                    if (layer.Success && int.Parse(layer.Groups[1].Value) >= config.NLayers)
                        throw new CheckpointException($"{folder}: tensor '{tensorName}' is for layer {layer.Groups[1].Value}, but the config has {config.NLayers} layers.");
                    throw new CheckpointException($"{folder}: unexpected tensor '{tensorName}': this {(config.AttentionOnly ? "attention-only " : "")}model has no such parameter." +
                                                  Util.NearestNames.DidYouMean(tensorName, parameters));
                }
                var entry = files.Describe(tensorName);
                if (entry.DType is not ("F32" or "F16" or "BF16" or "F64"))
                    throw new CheckpointException($"{folder}: tensor '{tensorName}' has dtype {entry.DType}; weights must be floating point.");
                using var scope = NewDisposeScope();
                assigner.Assign(tensorName, files.Read(tensorName), tensorName);
            }
            if (lnPre) // LayerNorm without learned gain and bias
                foreach (var p in parameters.Where(p => Regex.IsMatch(p, @"(^|\.)(ln1|ln2|ln_final)\.[wb]$")))
                    if (!files.Contains(p)) assigner.Fill(p, p.EndsWith(".w", StringComparison.Ordinal) ? 1.0 : 0.0);
            assigner.EnsureComplete(p => p);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
