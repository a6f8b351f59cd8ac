namespace Workbook.Model;

/// <summary>TransformerLens hook names, the shared vocabulary of hooks, caches and graph nodes.</summary>
public static class HookNames
{
    public const string Embed = "hook_embed";
    public const string PosEmbed = "hook_pos_embed";
    public const string FinalLnScale = "ln_final.hook_scale";
    public const string FinalLnNormalized = "ln_final.hook_normalized";

    public static string ResidPre(int layer) => Block(layer).ResidPre;
    public static string ResidMid(int layer) => Block(layer).ResidMid;
    public static string ResidPost(int layer) => Block(layer).ResidPost;
    public static string AttnIn(int layer) => Block(layer).AttnIn;
    public static string QInput(int layer) => Block(layer).QInput;
    public static string KInput(int layer) => Block(layer).KInput;
    public static string VInput(int layer) => Block(layer).VInput;
    public static string Q(int layer) => Block(layer).Q;
    public static string K(int layer) => Block(layer).K;
    public static string V(int layer) => Block(layer).V;
    public static string RotQ(int layer) => Block(layer).RotQ;
    public static string RotK(int layer) => Block(layer).RotK;
    public static string AttnScores(int layer) => Block(layer).AttnScores;
    public static string Pattern(int layer) => Block(layer).Pattern;
    public static string Z(int layer) => Block(layer).Z;
    public static string Result(int layer) => Block(layer).Result;
    public static string AttnOut(int layer) => Block(layer).AttnOut;
    public static string MlpIn(int layer) => Block(layer).MlpIn;
    public static string MlpPre(int layer) => Block(layer).MlpPre;
    public static string MlpPost(int layer) => Block(layer).MlpPost;
    public static string MlpOut(int layer) => Block(layer).MlpOut;
    public static string Ln1Scale(int layer) => Block(layer).Ln1Scale;
    public static string Ln1Normalized(int layer) => Block(layer).Ln1Normalized;
    public static string Ln2Scale(int layer) => Block(layer).Ln2Scale;
    public static string Ln2Normalized(int layer) => Block(layer).Ln2Normalized;

    static readonly List<BlockHookNames> Cache = new();

    /// <summary>All hook names of one block, built once so that a forward pass allocates no strings.</summary>
    public static BlockHookNames Block(int layer)
    {
        if (layer < 0) throw new ArgumentOutOfRangeException(nameof(layer));
        lock (Cache)
        {
            while (Cache.Count <= layer) Cache.Add(new BlockHookNames(Cache.Count));
            return Cache[layer];
        }
    }
}

public sealed class BlockHookNames
{
    public BlockHookNames(int layer)
    {
        string b = $"blocks.{layer}.";
        ResidPre = b + "hook_resid_pre"; ResidMid = b + "hook_resid_mid"; ResidPost = b + "hook_resid_post";
        AttnIn = b + "hook_attn_in"; QInput = b + "hook_q_input"; KInput = b + "hook_k_input"; VInput = b + "hook_v_input";
        Q = b + "attn.hook_q"; K = b + "attn.hook_k"; V = b + "attn.hook_v";
        RotQ = b + "attn.hook_rot_q"; RotK = b + "attn.hook_rot_k";
        AttnScores = b + "attn.hook_attn_scores"; Pattern = b + "attn.hook_pattern"; Z = b + "attn.hook_z";
        Result = b + "attn.hook_result"; AttnOut = b + "hook_attn_out";
        MlpIn = b + "hook_mlp_in"; MlpPre = b + "mlp.hook_pre"; MlpPost = b + "mlp.hook_post"; MlpOut = b + "hook_mlp_out";
        Ln1Scale = b + "ln1.hook_scale"; Ln1Normalized = b + "ln1.hook_normalized";
        Ln2Scale = b + "ln2.hook_scale"; Ln2Normalized = b + "ln2.hook_normalized";
    }

    public string ResidPre { get; }
    public string ResidMid { get; }
    public string ResidPost { get; }
    public string AttnIn { get; }
    public string QInput { get; }
    public string KInput { get; }
    public string VInput { get; }
    public string Q { get; }
    public string K { get; }
    public string V { get; }
    public string RotQ { get; }
    public string RotK { get; }
    public string AttnScores { get; }
    public string Pattern { get; }
    public string Z { get; }
    public string Result { get; }
    public string AttnOut { get; }
    public string MlpIn { get; }
    public string MlpPre { get; }
    public string MlpPost { get; }
    public string MlpOut { get; }
    public string Ln1Scale { get; }
    public string Ln1Normalized { get; }
    public string Ln2Scale { get; }
    public string Ln2Normalized { get; }
}
