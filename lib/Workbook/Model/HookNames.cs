namespace Workbook.Model;

/// <summary>
/// One hook point, declared once in <see cref="HookNames"/>: its TransformerLens name (inside a block for block hooks),
/// the shape of its activation as dimension names, and which models have it. Names of a block's hook for layer l:
/// <c>HookNames.ResidPre[3]</c> is <c>blocks.3.hook_resid_pre</c>.
/// </summary>
public sealed class HookPoint
{
    readonly Func<TransformerConfig, bool> _present;

    internal HookPoint(int index, bool inBlock, string name, string shape, Func<TransformerConfig, bool> present)
    {
        Index = index;
        InBlock = inBlock;
        Name = name;
        Shape = shape.Split(' ');
        _present = present;
    }

    /// <summary>Position among the declarations of its scope (before, in or after the blocks), which is forward order.</summary>
    internal int Index { get; }
    /// <summary>A hook of every block (named <c>blocks.{l}.{Name}</c>) rather than of the model.</summary>
    public bool InBlock { get; }
    /// <summary>The full name of a model hook; a block hook's name inside its block (<c>attn.hook_z</c>).</summary>
    public string Name { get; }
    /// <summary>The activation's dimensions in TransformerLens's names (batch, pos, head_index, d_model, ...; a number is a fixed size).</summary>
    public IReadOnlyList<string> Shape { get; }

    public bool IsPresentIn(TransformerConfig config) => _present(config);

    /// <summary>The full name of this block hook in block <paramref name="layer"/>.</summary>
    public string this[int layer] => InBlock ? HookNames.Block(layer)[this] : throw new InvalidOperationException($"'{Name}' is not a block hook.");

    /// <summary>The activation's shape for <paramref name="batch"/> prompts of <paramref name="seq"/> tokens.</summary>
    public long[] ShapeFor(TransformerConfig c, long batch, long seq) => Shape.Select(d => d switch
    {
        "batch" => batch,
        "pos" or "query_pos" or "key_pos" => seq,
        "head_index" => c.NHeads,
        "d_model" => c.DModel,
        "d_head" => c.DHead,
        "d_mlp" => c.DMlp,
        _ => long.Parse(d, System.Globalization.CultureInfo.InvariantCulture),
    }).ToArray();

    public override string ToString() => Name;
}

/// <summary>
/// Every hook point, declared once, in forward order: the TransformerLens vocabulary of hooks, caches and graph nodes.
/// A model's hook list (<see cref="For"/>), <c>workbook hooks</c> and the shape checks all follow from these
/// declarations; a new kind of block declares its hooks here, with the condition under which a model has them.
/// </summary>
public static class HookNames
{
    static readonly List<HookPoint> BeforePoints = new(), BlockPoints = new(), AfterPoints = new();

    static HookPoint BeforeBlocks(string name, string shape, Func<TransformerConfig, bool>? present = null) =>
        Add(BeforePoints, false, name, shape, present);

    static HookPoint AfterBlocks(string name, string shape, Func<TransformerConfig, bool>? present = null) =>
        Add(AfterPoints, false, name, shape, present);

    static HookPoint InBlock(string name, string shape, Func<TransformerConfig, bool>? present = null) =>
        Add(BlockPoints, true, name, shape, present);

    static HookPoint Add(List<HookPoint> list, bool inBlock, string name, string shape, Func<TransformerConfig, bool>? present)
    {
        var point = new HookPoint(list.Count, inBlock, name, shape, present ?? (_ => true));
        list.Add(point);
        return point;
    }

    static bool LayerNorm(TransformerConfig c) => c.UseLayerNorm;
    static bool Mlp(TransformerConfig c) => c.HasMlp;

    // Before the blocks.
    public static readonly HookPoint Embed = BeforeBlocks("hook_embed", "batch pos d_model");
    public static readonly HookPoint PosEmbed = BeforeBlocks("hook_pos_embed", "batch pos d_model", c => c.Positional == PositionalEmbedding.Learned);

    // Each block, in forward order. Per-head inputs (and the LayerNorm hooks on them) are in TransformerLens's
    // split-input layout; they exist only when hooked or patched.
    public static readonly HookPoint ResidPre = InBlock("hook_resid_pre", "batch pos d_model");
    public static readonly HookPoint AttnIn = InBlock("hook_attn_in", "batch pos head_index d_model");
    public static readonly HookPoint QInput = InBlock("hook_q_input", "batch pos head_index d_model");
    public static readonly HookPoint KInput = InBlock("hook_k_input", "batch pos head_index d_model");
    public static readonly HookPoint VInput = InBlock("hook_v_input", "batch pos head_index d_model");
    public static readonly HookPoint Ln1Scale = InBlock("ln1.hook_scale", "batch pos head_index 1", LayerNorm);
    public static readonly HookPoint Ln1Normalized = InBlock("ln1.hook_normalized", "batch pos head_index d_model", LayerNorm);
    public static readonly HookPoint Q = InBlock("attn.hook_q", "batch pos head_index d_head");
    public static readonly HookPoint K = InBlock("attn.hook_k", "batch pos head_index d_head");
    public static readonly HookPoint V = InBlock("attn.hook_v", "batch pos head_index d_head");
    public static readonly HookPoint RotQ = InBlock("attn.hook_rot_q", "batch pos head_index d_head", c => c.Positional == PositionalEmbedding.Rotary);
    public static readonly HookPoint RotK = InBlock("attn.hook_rot_k", "batch pos head_index d_head", c => c.Positional == PositionalEmbedding.Rotary);
    public static readonly HookPoint AttnScores = InBlock("attn.hook_attn_scores", "batch head_index query_pos key_pos");
    public static readonly HookPoint Pattern = InBlock("attn.hook_pattern", "batch head_index query_pos key_pos");
    public static readonly HookPoint Z = InBlock("attn.hook_z", "batch pos head_index d_head");
    public static readonly HookPoint Result = InBlock("attn.hook_result", "batch pos head_index d_model");
    public static readonly HookPoint AttnOut = InBlock("hook_attn_out", "batch pos d_model");
    public static readonly HookPoint ResidMid = InBlock("hook_resid_mid", "batch pos d_model", c => c.HasMlp && !c.ParallelAttnMlp);
    public static readonly HookPoint MlpIn = InBlock("hook_mlp_in", "batch pos d_model", Mlp);
    public static readonly HookPoint Ln2Scale = InBlock("ln2.hook_scale", "batch pos 1", c => c.HasMlp && c.UseLayerNorm);
    public static readonly HookPoint Ln2Normalized = InBlock("ln2.hook_normalized", "batch pos d_model", c => c.HasMlp && c.UseLayerNorm);
    public static readonly HookPoint MlpPre = InBlock("mlp.hook_pre", "batch pos d_mlp", Mlp);
    public static readonly HookPoint MlpPost = InBlock("mlp.hook_post", "batch pos d_mlp", Mlp);
    public static readonly HookPoint MlpOut = InBlock("hook_mlp_out", "batch pos d_model", Mlp);
    public static readonly HookPoint ResidPost = InBlock("hook_resid_post", "batch pos d_model");

    // After the blocks.
    public static readonly HookPoint FinalLnScale = AfterBlocks("ln_final.hook_scale", "batch pos 1", LayerNorm);
    public static readonly HookPoint FinalLnNormalized = AfterBlocks("ln_final.hook_normalized", "batch pos d_model", LayerNorm);

    /// <summary>Every hook point of a model with <paramref name="config"/>, with its full name, in forward order.</summary>
    public static IReadOnlyList<NamedHook> For(TransformerConfig config)
    {
        var result = BeforePoints.Where(p => p.IsPresentIn(config)).Select(p => new NamedHook(p.Name, p)).ToList();
        var blockPoints = BlockPoints.Where(p => p.IsPresentIn(config)).ToList();
        for (int l = 0; l < config.NLayers; l++)
            result.AddRange(blockPoints.Select(p => new NamedHook(Block(l)[p], p)));
        result.AddRange(AfterPoints.Where(p => p.IsPresentIn(config)).Select(p => new NamedHook(p.Name, p)));
        return result;
    }

    static readonly List<BlockHookNames> Cache = new();

    /// <summary>All hook names of one block, built once so that a forward pass allocates no strings.</summary>
    public static BlockHookNames Block(int layer)
    {
        if (layer < 0) throw new ArgumentOutOfRangeException(nameof(layer));
        lock (Cache)
        {
            while (Cache.Count <= layer) Cache.Add(new BlockHookNames(Cache.Count, BlockPoints));
            return Cache[layer];
        }
    }
}

/// <summary>A hook point of one model under its full name (<c>blocks.3.hook_resid_pre</c>).</summary>
public sealed record NamedHook(string Name, HookPoint Point);

/// <summary>The full hook names of one block (<c>blocks.{l}.…</c>), indexed by their declarations.</summary>
public sealed class BlockHookNames
{
    readonly string[] _names;

    internal BlockHookNames(int layer, IReadOnlyList<HookPoint> points) =>
        _names = points.Select(p => $"blocks.{layer}.{p.Name}").ToArray();

    public string this[HookPoint point] => point.InBlock ? _names[point.Index] : throw new InvalidOperationException($"'{point.Name}' is not a block hook.");
}
