using System.Text;
using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Checkpoints;

/// <summary>torch.save files (TransformerLens *final.pth, pytorch_model.bin) written by an independent pickle writer.</summary>
public class TorchCheckpointTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-torch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>tiny-gpt2's tensors in HuggingFace names.</summary>
    static Dictionary<string, Tensor> Gpt2Tensors()
    {
        using var f = SafetensorsFile.Open(TestFiles.Fixture("tiny-gpt2/model.safetensors"));
        return f.Tensors.Keys.ToDictionary(n => n.Replace("transformer.", ""), n => f.Read(n));
    }

    /// <summary>
    /// tiny-gpt2 rewritten in TransformerLens names and shapes, head by head, following the conversion in the paper
    /// reference (section E.1): W_Q[h] = c_attn.weight[:, h·dh:(h+1)·dh] (K at +D, V at +2D), W_O[h] = c_proj.weight[h·dh:(h+1)·dh, :].
    /// </summary>
    static List<(string Name, Tensor Value)> Gpt2AsTransformerLens(Dictionary<string, Tensor> hf)
    {
        const int D = 64, H = 4, dh = 16;
        var tl = new List<(string, Tensor)> { ("embed.W_E", hf["wte.weight"]), ("pos_embed.W_pos", hf["wpe.weight"]) };
        for (int l = 0; l < 3; l++)
        {
            string h = $"h.{l}.", b = $"blocks.{l}.";
            var cAttn = hf[h + "attn.c_attn.weight"];
            var cAttnBias = hf[h + "attn.c_attn.bias"];
            string[] qkv = { "Q", "K", "V" };
            for (int part = 0; part < 3; part++)
            {
                var heads = Enumerable.Range(0, H).Select(i => cAttn[.., (part * D + i * dh)..(part * D + (i + 1) * dh)]).ToArray();
                var biases = Enumerable.Range(0, H).Select(i => cAttnBias[(part * D + i * dh)..(part * D + (i + 1) * dh)]).ToArray();
                tl.Add(($"{b}attn.W_{qkv[part]}", stack(heads)));
                tl.Add(($"{b}attn.b_{qkv[part]}", stack(biases)));
            }
            var cProj = hf[h + "attn.c_proj.weight"];
            tl.Add(($"{b}attn.W_O", stack(Enumerable.Range(0, H).Select(i => cProj[(i * dh)..((i + 1) * dh), ..]).ToArray())));
            tl.Add(($"{b}attn.b_O", hf[h + "attn.c_proj.bias"]));
            tl.Add(($"{b}ln1.w", hf[h + "ln_1.weight"]));
            tl.Add(($"{b}ln1.b", hf[h + "ln_1.bias"]));
            tl.Add(($"{b}ln2.w", hf[h + "ln_2.weight"]));
            tl.Add(($"{b}ln2.b", hf[h + "ln_2.bias"]));
            tl.Add(($"{b}mlp.W_in", hf[h + "mlp.c_fc.weight"]));
            tl.Add(($"{b}mlp.b_in", hf[h + "mlp.c_fc.bias"]));
            tl.Add(($"{b}mlp.W_out", hf[h + "mlp.c_proj.weight"]));
            tl.Add(($"{b}mlp.b_out", hf[h + "mlp.c_proj.bias"]));
        }
        tl.Add(("ln_final.w", hf["ln_f.weight"]));
        tl.Add(("ln_final.b", hf["ln_f.bias"]));
        tl.Add(("unembed.b_U", zeros(512)));
        return tl;
    }

    const string TinyGpt2TlConfig = """
        {"n_layers": 3, "d_model": 64, "n_heads": 4, "d_head": 16, "d_mlp": 256, "d_vocab": 512, "n_ctx": 64,
         "act_fn": "gelu_new", "normalization_type": "LN", "positional_embedding_type": "standard", "attn_only": false,
         "model_name": "tiny-gpt2-tl"}
        """;

    [Fact]
    public void TransformerLensCheckpointOfTinyGpt2ReproducesHuggingFaceLogits()
    {
        using var scope = NewDisposeScope();
        var w = new TorchSaveWriter();
        foreach (var (name, value) in Gpt2AsTransformerLens(Gpt2Tensors())) w.Add(name, value);
        // Tied unembedding, as torch.save stores it: W_U is W_E's storage seen transposed ([D, V], strides [1, D]).
        w.AddView("unembed.W_U", storageOf: "embed.W_E", offset: 0, shape: new long[] { 64, 512 }, strides: new long[] { 1, 64 });
        string folder = Path.Combine(_dir, "tl");
        Directory.CreateDirectory(folder);
        w.Write(Path.Combine(folder, "model_final.pth"));
        File.WriteAllText(Path.Combine(folder, "config.json"), TinyGpt2TlConfig);

        using var model = ModelLoader.Load(folder);
        var fixture = ScenarioFixture.Load("tiny-gpt2-scenarios.json");
        using var _ = no_grad();
        TensorAssert.Close(fixture["unpatched"].Logits, model.Forward(TensorAssert.Tokens(fixture.Clean)), 1e-4, "TL-format tiny-gpt2");
    }

    [Fact]
    public void PytorchModelBinLoadsLikeSafetensors()
    {
        using var scope = NewDisposeScope();
        string folder = Path.Combine(_dir, "bin");
        Directory.CreateDirectory(folder);
        File.Copy(TestFiles.Fixture("tiny-gpt2/config.json"), Path.Combine(folder, "config.json"));
        var w = new TorchSaveWriter();
        foreach (var (name, value) in Gpt2Tensors().OrderBy(kv => kv.Key)) w.Add("transformer." + name, value.to(ScalarType.Float16).to(ScalarType.Float32));
        w.Write(Path.Combine(folder, "pytorch_model.bin"));
        using var model = ModelLoader.Load(folder);
        var fixture = ScenarioFixture.Load("tiny-gpt2-scenarios.json");
        using var _ = no_grad();
        // Weights rounded through float16 on the way: within float16 rounding of the float32 logits.
        TensorAssert.Close(fixture["unpatched"].Logits, model.Forward(TensorAssert.Tokens(fixture.Clean)), 0.05, "pytorch_model.bin");
    }

    /// <summary>An attention-only model computed the slow, obvious way (paper reference section E, general TL forward).</summary>
    static Tensor ReferenceAttnOnly(Dictionary<string, Tensor> w, long[] tokens, int layers, int heads, int dHead)
    {
        int T = tokens.Length;
        Tensor LayerNorm(Tensor x, Tensor g, Tensor b)
        {
            var mean = x.mean(new long[] { -1 }, keepdim: true);
            var variance = (x - mean).pow(2).mean(new long[] { -1 }, keepdim: true);
            return (x - mean) / (variance + 1e-5).sqrt() * g + b;
        }
        var x = w["embed.W_E"][tensor(tokens)] + w["pos_embed.W_pos"][..T];
        for (int l = 0; l < layers; l++)
        {
            var normed = LayerNorm(x, w[$"blocks.{l}.ln1.w"], w[$"blocks.{l}.ln1.b"]);
            var output = w[$"blocks.{l}.attn.b_O"].expand(T, -1).clone();
            for (int h = 0; h < heads; h++)
            {
                var q = normed.matmul(w[$"blocks.{l}.attn.W_Q"][h]) + w[$"blocks.{l}.attn.b_Q"][h];
                var k = normed.matmul(w[$"blocks.{l}.attn.W_K"][h]) + w[$"blocks.{l}.attn.b_K"][h];
                var v = normed.matmul(w[$"blocks.{l}.attn.W_V"][h]) + w[$"blocks.{l}.attn.b_V"][h];
                var scores = q.matmul(k.t()) / Math.Sqrt(dHead);
                for (int i = 0; i < T; i++)
                    for (int j = i + 1; j < T; j++)
                        scores[i, j] = tensor(float.NegativeInfinity);
                output += scores.softmax(-1).matmul(v).matmul(w[$"blocks.{l}.attn.W_O"][h]);
            }
            x = x + output;
        }
        return LayerNorm(x, w["ln_final.w"], w["ln_final.b"]).matmul(w["unembed.W_U"]) + w["unembed.b_U"];
    }

    static string AttnOnlyConfig(int layers, int dModel, int heads, int dHead, int vocab, int ctx) => $$"""
        {"n_layers": {{layers}}, "d_model": {{dModel}}, "d_mlp": {{4 * dModel}}, "d_head": {{dHead}}, "n_heads": {{heads}},
         "n_ctx": {{ctx}}, "d_vocab": {{vocab}}, "act_fn": "solu_ln", "attn_only": true, "normalization": "LN",
         "shortformer_pos": false, "tokenizer_name": "NeelNanda/gpt-neox-tokenizer-digits"}
        """;

    Dictionary<string, Tensor> WriteRandomAttnOnly(string folder, int layers, int dModel, int heads, int dHead, int vocab, int ctx)
    {
        manual_seed(7);
        var w = new Dictionary<string, Tensor>
        {
            ["embed.W_E"] = randn(vocab, dModel),
            ["pos_embed.W_pos"] = randn(ctx, dModel),
            ["ln_final.w"] = rand(dModel) + 0.5,
            ["ln_final.b"] = randn(dModel) * 0.1,
            ["unembed.W_U"] = randn(dModel, vocab) * 0.2,
            ["unembed.b_U"] = randn(vocab) * 0.1,
        };
        for (int l = 0; l < layers; l++)
        {
            string b = $"blocks.{l}.";
            w[b + "ln1.w"] = rand(dModel) + 0.5;
            w[b + "ln1.b"] = randn(dModel) * 0.1;
            foreach (var m in new[] { "W_Q", "W_K", "W_V" }) w[b + "attn." + m] = randn(heads, dModel, dHead) * 0.3;
            foreach (var m in new[] { "b_Q", "b_K", "b_V" }) w[b + "attn." + m] = randn(heads, dHead) * 0.1;
            w[b + "attn.W_O"] = randn(heads, dHead, dModel) * 0.3;
            w[b + "attn.b_O"] = randn(dModel) * 0.1;
        }
        var writer = new TorchSaveWriter();
        foreach (var (name, value) in w) writer.Add(name, value);
        for (int l = 0; l < layers; l++) // buffers TransformerLens saves with the weights
        {
            writer.Add($"blocks.{l}.attn.mask", ones(ctx, ctx, dtype: ScalarType.Bool).tril());
            writer.Add($"blocks.{l}.attn.IGNORE", tensor(-1e5f));
        }
        Directory.CreateDirectory(folder);
        writer.Write(Path.Combine(folder, "model_final.pth"));
        File.WriteAllText(Path.Combine(folder, "config.json"), AttnOnlyConfig(layers, dModel, heads, dHead, vocab, ctx));
        return w;
    }

    [Fact]
    public void AttentionOnlyCheckpointMatchesAReferenceForward()
    {
        using var scope = NewDisposeScope();
        string folder = Path.Combine(_dir, "attn-only");
        var weights = WriteRandomAttnOnly(folder, layers: 2, dModel: 32, heads: 4, dHead: 8, vocab: 100, ctx: 16);

        using var model = ModelLoader.Load(folder);
        Assert.Equal(Architecture.AttentionOnly, model.Config.Architecture);
        Assert.True(model.Config.AttentionOnly);
        Assert.False(model.Config.HasMlp);
        Assert.Equal(PositionalEmbedding.Learned, model.Config.Positional);

        long[] tokens = { 5, 17, 99, 0, 42, 42, 8, 63 };
        using var _ = no_grad();
        var expected = ReferenceAttnOnly(weights, tokens, 2, 4, 8);
        var actual = model.Forward(tensor(tokens).unsqueeze(0))[0];
        TensorAssert.Close(expected, actual, 1e-4, "attention-only");
    }

    [Fact]
    public void AttentionOnlyConfigIsParsedLikeTransformerLens()
    {
        var c = TransformerLensCheckpoint.ReadConfig(ConfigJson.Parse(AttnOnlyConfig(4, 512, 8, 64, 48262, 1024)), "attn-only-4l");
        Assert.Equal((4, 512, 8, 64, 48262, 1024), (c.NLayers, c.DModel, c.NHeads, c.DHead, c.DVocab, c.NCtx));
        Assert.True(c.AttentionOnly);
        Assert.Equal(Architecture.AttentionOnly, c.Architecture);
        Assert.True(c.UseLayerNorm);
        Assert.False(c.TiedEmbeddings);
        Assert.Equal(1e-5, c.LayerNormEps);
    }

    [Theory]
    [InlineData("\"positional_embedding_type\": \"shortformer\"", "shortformer")]
    [InlineData("\"shortformer_pos\": true", "shortformer")]
    [InlineData("\"normalization_type\": \"RMS\"", "RMS")]
    public void UnsupportedTransformerLensConfigsAreNamed(string field, string expected)
    {
        string json = "{\"n_layers\": 1, \"d_model\": 8, \"n_heads\": 2, \"d_head\": 4, \"d_vocab\": 10, \"n_ctx\": 4, \"attn_only\": true, " + field + "}";
        var e = Assert.Throws<CheckpointException>(() => TransformerLensCheckpoint.ReadConfig(ConfigJson.Parse(json), "m"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        using var scope = NewDisposeScope();
        string folder = Path.Combine(_dir, "extra");
        WriteRandomAttnOnly(folder, 1, 16, 2, 8, 20, 8);
        var w = new TorchSaveWriter();
        using (var f = TorchCheckpointFile.Open(Path.Combine(folder, "model_final.pth")))
            foreach (var name in f.Entries.Keys) w.Add(name, f.Read(name));
        w.Add("blocks.0.mlp.W_in", zeros(16, 64));
        w.Write(Path.Combine(folder, "model_final.pth"));
        var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(folder));
        Assert.Contains("blocks.0.mlp.W_in", e.Message);
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("torch", "load")]
    [InlineData("__builtin__", "getattr")]
    public void UnpicklerRefusesAnyOtherGlobal(string module, string name)
    {
        // The classic exploit shape: GLOBAL os.system, ("echo pwned",), REDUCE.
        var p = new PickleBuilder().Proto(2).Global(module, name).Mark().Unicode("echo pwned").Tuple().Reduce().Stop();
        string path = Path.Combine(_dir, "evil.pth");
        TorchSaveWriter.WriteZip(path, p.ToArray(), Array.Empty<(string, byte[])>());
        var e = Assert.Throws<CheckpointException>(() => TorchCheckpointFile.Open(path));
        Assert.Contains($"'{module}.{name}'", e.Message);
        Assert.Contains("refuses", e.Message);
    }

    [Fact]
    public void LegacyAndTruncatedFilesGetClearErrors()
    {
        string legacy = Path.Combine(_dir, "legacy.pth");
        File.WriteAllBytes(legacy, new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e });
        Assert.Contains("not a zip archive", Assert.Throws<CheckpointException>(() => TorchCheckpointFile.Open(legacy)).Message);

        using var scope = NewDisposeScope();
        // A storage shorter than its tensor needs.
        var p = new PickleBuilder().Proto(2);
        p.Global("collections", "OrderedDict").EmptyTuple().Reduce();
        p.Unicode("w").Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Unicode("storage").Global("torch", "FloatStorage").Unicode("0").Unicode("cpu").Int(8).Tuple().BinPersId()
            .Int(0).IntTuple(new long[] { 8 }).IntTuple(new long[] { 1 }).False().Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce().SetItem().Stop();
        string shortFile = Path.Combine(_dir, "short.pth");
        TorchSaveWriter.WriteZip(shortFile, p.ToArray(), new[] { ("0", new byte[12]) });
        var e = Assert.Throws<CheckpointException>(() => TorchCheckpointFile.Open(shortFile));
        Assert.Contains("storage '0'", e.Message);
        Assert.Contains("needs 32", e.Message);
    }

    [Fact]
    public void ReadsViewsWithOffsetsAndStrides()
    {
        using var scope = NewDisposeScope();
        var baseTensor = arange(24, dtype: ScalarType.Float32).reshape(4, 6);
        var w = new TorchSaveWriter().Add("base", baseTensor)
            .AddView("row2", "base", offset: 12, shape: new long[] { 6 }, strides: new long[] { 1 })
            .AddView("transposed", "base", offset: 0, shape: new long[] { 6, 4 }, strides: new long[] { 1, 6 })
            .AddView("column3", "base", offset: 3, shape: new long[] { 4 }, strides: new long[] { 6 });
        string path = Path.Combine(_dir, "views.pth");
        w.Write(path);
        using var f = TorchCheckpointFile.Open(path);
        Assert.Equal(new[] { 12f, 13, 14, 15, 16, 17 }, f.Read("row2").data<float>().ToArray());
        Assert.Equal(baseTensor.t().contiguous().data<float>().ToArray(), f.Read("transposed").data<float>().ToArray());
        Assert.Equal(new[] { 3f, 9, 15, 21 }, f.Read("column3").data<float>().ToArray());
        Assert.Equal(new long[] { 6, 4 }, f.Entries["transposed"].Shape);
        Assert.Equal("F32", f.Entries["base"].DType);
    }
}
