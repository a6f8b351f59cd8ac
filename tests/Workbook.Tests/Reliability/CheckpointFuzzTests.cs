using System.Text;
using CsCheck;
using Workbook.Checkpoints;
using Workbook.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Workbook.Tests.Reliability;

/// <summary>
/// Fuzzing the checkpoint readers: safetensors headers and data, config.json (HuggingFace gpt2 / gpt_neox and
/// TransformerLens), torch.save zips with their restricted unpickler, and whole checkpoint folders. Every input is
/// either read or rejected with a <see cref="CheckpointException"/> that names the file.
/// </summary>
[Trait("Category", "Fuzz")]
public sealed class CheckpointFuzzTests : IDisposable
{
    readonly ITestOutputHelper _output;
    readonly string _dir = Directory.CreateTempSubdirectory("wb-fuzz-ckpt-").FullName;

    public CheckpointFuzzTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly Type[] Rejections = { typeof(CheckpointException) };

    // ---------------------------------------------------------------- safetensors

    sealed record StEntry(string Name, string DTypeJson, string ShapeJson, string OffsetsJson);

    static readonly string[] DTypes = { "\"F32\"", "\"F16\"", "\"BF16\"", "\"I64\"", "\"U8\"", "\"BOOL\"", "\"F64\"", "\"I8\"", "\"X9\"", "\"\"", "\"f32\"", "7", "null" };
    static readonly string[] Dims = { "0", "1", "2", "3", "4", "-1", "1099511627776", "4611686018427387904", "2147483647", "9223372036854775807", "1e20", "2.5", "\"3\"", "null" };

    static string ValidSafetensorsHeader(out byte[] data)
    {
        // a: F32 [2, 3] (24 bytes), b: F16 [4] (8 bytes), c: I64 [1] (8 bytes), d: F32 [0] (empty)
        data = new byte[40];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7);
        return """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},"c":{"dtype":"I64","shape":[1],"data_offsets":[32,40]},"d":{"dtype":"F32","shape":[0],"data_offsets":[40,40]}}""";
    }

    static byte[] Safetensors(string header, byte[] data, ulong? lengthPrefix = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var result = new byte[8 + h.Length + data.Length];
        BitConverter.GetBytes(lengthPrefix ?? (ulong)h.Length).CopyTo(result, 0);
        h.CopyTo(result, 8);
        data.CopyTo(result, 8 + h.Length);
        return result;
    }

    /// <summary>Headers assembled from entries with hostile fields: unknown dtypes, absurd or negative dims, offsets out of range, overlapping, reversed or mistyped.</summary>
    static byte[] StructuredSafetensors(Random r, out string what)
    {
        var entries = new List<StEntry>();
        long offset = 0;
        int n = 1 + r.Next(4);
        var notes = new List<string>();
        for (int i = 0; i < n; i++)
        {
            string dtype = "\"F32\"";
            long[] shape = { 1 + r.Next(3), 1 + r.Next(3) };
            long bytes = shape[0] * shape[1] * 4;
            string shapeJson = $"[{shape[0]},{shape[1]}]";
            string offsetsJson = $"[{offset},{offset + bytes}]";
            switch (r.Next(8))
            {
                case 0: dtype = DTypes[r.Next(DTypes.Length)]; notes.Add($"dtype {dtype}"); break;
                case 1: shapeJson = "[" + string.Join(",", Enumerable.Range(0, r.Next(0, 10)).Select(_ => Dims[r.Next(Dims.Length)])) + "]"; notes.Add($"shape {shapeJson}"); break;
                case 2: offsetsJson = $"[{offset + bytes},{offset}]"; notes.Add("reversed offsets"); break;
                case 3: offsetsJson = $"[{Math.Max(0, offset - 4)},{Math.Max(0, offset - 4) + bytes}]"; notes.Add("overlap"); break;
                case 4: offsetsJson = $"[{offset},{offset + bytes + 1_000_000}]"; notes.Add("past the end"); break;
                case 5: offsetsJson = r.Next(5) switch { 0 => "[0]", 1 => "[\"0\",\"8\"]", 2 => "[0,8,16]", 3 => "{}", _ => $"[{Dims[r.Next(Dims.Length)]},{Dims[r.Next(Dims.Length)]}]" }; notes.Add($"offsets {offsetsJson}"); break;
                default: break;
            }
            entries.Add(new StEntry(r.Next(10) == 0 && i > 0 ? entries[0].Name : $"t{i}", dtype, shapeJson, offsetsJson));
            offset += bytes;
        }
        var parts = entries.Select(e => r.Next(15) == 0
            ? $"\"{e.Name}\":{{\"dtype\":{e.DTypeJson},\"shape\":{e.ShapeJson}}}"
            : $"\"{e.Name}\":{{\"dtype\":{e.DTypeJson},\"shape\":{e.ShapeJson},\"data_offsets\":{e.OffsetsJson}}}");
        if (r.Next(4) == 0) parts = parts.Prepend(r.Next(2) == 0 ? "\"__metadata__\":{\"format\":\"pt\"}" : $"\"__metadata__\":{Mutations.RandomJsonValue(r)}");
        string header = "{" + string.Join(",", parts) + "}";
        long dataLength = r.Next(6) == 0 ? Math.Max(0, offset - r.Next(1, 9)) : offset;
        ulong? prefix = null;
        if (r.Next(10) == 0)
        {
            prefix = r.Next(3) switch { 0 => (ulong)header.Length + (ulong)r.Next(1, 64), 1 => (ulong)Math.Max(0, header.Length - r.Next(1, 8)), _ => ulong.MaxValue - (ulong)r.Next(8) };
            notes.Add($"length prefix {prefix}");
        }
        what = $"structured header {header} + {dataLength} data bytes" + (notes.Count > 0 ? $" ({string.Join("; ", notes)})" : "");
        return Safetensors(header, new byte[dataLength], prefix);
    }

    Gen<FuzzCase<byte[]>> SafetensorsCases(string path) => Gen.Int.Select(seed =>
    {
        var r = new Random(seed);
        string header = ValidSafetensorsHeader(out var data);
        switch (r.Next(5))
        {
            case 0:
            case 1:
                var s = StructuredSafetensors(r, out var what);
                return new FuzzCase<byte[]>(s, $"seed {seed}: {what}", path);
            case 2:
                string mutated = Mutations.MutateJson(header, r);
                return new FuzzCase<byte[]>(Safetensors(mutated, data), $"seed {seed}: mutated header {mutated}", path);
            case 3:
                var file = Safetensors(header, data);
                return new FuzzCase<byte[]>(Mutations.MutateBytes(file, r, 0, 8 + header.Length + 8), $"seed {seed}: byte edits of a valid file", path);
            default:
                return new FuzzCase<byte[]>(Mutations.RandomBytes(r, 300), $"seed {seed}: random bytes", path);
        }
    });

    static void ReadSafetensors(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        using var file = SafetensorsFile.Open(path);
        foreach (var name in file.Tensors.Keys)
        {
            using var t = file.Read(name);
            if (t.NumberOfElements != file.Tensors[name].ElementCount) throw new InvalidOperationException($"{name}: read {t.NumberOfElements} elements");
        }
    }

    [Fact]
    public void SafetensorsHeadersAndData()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        var stats = FuzzHarness.Run("safetensors", SafetensorsCases(path), bytes => ReadSafetensors(path, bytes), Rejections, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    // ---------------------------------------------------------------- config.json

    /// <summary>attn-only-4l's TransformerLens config, shrunk.</summary>
    const string TransformerLensConfig = """
        {"n_layers": 2, "d_model": 16, "n_ctx": 32, "d_head": 4, "model_name": "Attn_Only_2L", "n_heads": 4, "d_mlp": -1, "act_fn": "solu_ln",
         "d_vocab": 48, "eps": 1e-05, "use_attn_result": false, "use_attn_scale": true, "use_split_qkv_input": false, "use_local_attn": false,
         "original_architecture": null, "from_checkpoint": false, "checkpoint_index": null, "checkpoint_label_type": null, "checkpoint_value": null,
         "tokenizer_name": "NeelNanda/gpt-neox-tokenizer-digits", "window_size": null, "attn_types": null, "init_mode": "gpt2", "normalization_type": "LNPre",
         "device": "cuda", "attention_dir": "causal", "attn_only": true, "seed": null, "initializer_range": 0.1, "init_weights": true, "scale_attn_by_inverse_layer_idx": false,
         "positional_embedding_type": "standard", "final_rms": false, "d_vocab_out": 48, "parallel_attn_mlp": false, "rotary_dim": null, "n_params": 2048}
        """;

    static readonly string[] ConfigBases =
    {
        File.ReadAllText(TestFiles.Fixture("tiny-gpt2/config.json")),
        File.ReadAllText(TestFiles.Fixture("tiny-neox/config.json")),
        TransformerLensConfig,
        """{"model_type":"gpt_neox","hidden_size":64,"num_attention_heads":4,"num_hidden_layers":2,"intermediate_size":256,"vocab_size":512,"max_position_embeddings":64,"rotary_pct":0.25,"rotary_emb_base":10000}""",
    };

    static readonly string[] ConfigFields =
    {
        "n_embd", "n_head", "n_layer", "n_inner", "vocab_size", "n_positions", "n_ctx", "layer_norm_epsilon", "activation_function", "tie_word_embeddings",
        "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "max_position_embeddings", "rotary_pct", "rope_parameters",
        "partial_rotary_factor", "use_parallel_residual", "hidden_act", "model_type", "architectures", "d_model", "n_heads", "d_head", "d_vocab", "d_vocab_out",
        "d_mlp", "attn_only", "normalization_type", "act_fn", "eps", "bos_token_id",
    };

    static Gen<FuzzCase<string>> ConfigCases(string path) => Gen.Int.Select(seed =>
    {
        var r = new Random(seed);
        string text = ConfigBases[r.Next(ConfigBases.Length)];
        if (r.Next(3) == 0)
        {
            // One known field set to an edge value: the mutations most likely to reach the range checks.
            var node = System.Text.Json.Nodes.JsonNode.Parse(text)!.AsObject();
            string field = ConfigFields[r.Next(ConfigFields.Length)];
            node[field] = System.Text.Json.Nodes.JsonNode.Parse(Mutations.RandomJsonValue(r, depth: 3));
            text = node.ToJsonString();
        }
        else if (r.Next(20) == 0) text = Encoding.UTF8.GetString(Mutations.RandomBytes(r, 200));
        else text = Mutations.MutateJson(text, r);
        return new FuzzCase<string>(text, $"seed {seed}: {text}", path);
    });

    static void ReadConfig(string text, string path)
    {
        var config = ConfigJson.Parse(text, path);
        if (HuggingFaceCheckpoint.Recognises(config)) HuggingFaceCheckpoint.ReadConfig(config, "fuzz");
        else if (TransformerLensCheckpoint.Recognises(config)) TransformerLensCheckpoint.ReadConfig(config, "fuzz");
    }

    [Fact]
    public void ConfigJsonOfEveryKind()
    {
        const string path = "fuzz/config.json";
        var stats = FuzzHarness.Run("config.json", ConfigCases(path), text => ReadConfig(text, path), Rejections, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    /// <summary>Whole folders: a mutated config.json next to the real tiny-gpt2 weights, loaded. Fewer cases: each builds a model.</summary>
    [Fact]
    public void CheckpointFoldersWithMutatedConfigs()
    {
        string folder = Path.Combine(_dir, "tiny-gpt2");
        Directory.CreateDirectory(folder);
        File.Copy(TestFiles.Fixture("tiny-gpt2/model.safetensors"), Path.Combine(folder, "model.safetensors"));
        string baseConfig = File.ReadAllText(TestFiles.Fixture("tiny-gpt2/config.json"));
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            string text = Mutations.MutateJson(baseConfig, r);
            return new FuzzCase<string>(text, $"seed {seed}: {text}", folder);
        });
        var stats = FuzzHarness.Run("checkpoint folder", gen, text =>
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), text);
            using var model = ModelLoader.LoadFolder(folder);
        }, Rejections, _output, share: 0.03);
        Assert.True(stats.Rejected.Values.Sum() > 0, stats.ToString());
    }

    // ---------------------------------------------------------------- sharded checkpoints: model.safetensors.index.json

    /// <summary>A folder of two safetensors shards and their index; the index is mutated and the folder opened (the hub's view and the loader's).</summary>
    [Fact]
    public void ShardIndexes()
    {
        string folder = Path.Combine(_dir, "sharded");
        Directory.CreateDirectory(folder);
        string header = ValidSafetensorsHeader(out var data);
        File.WriteAllBytes(Path.Combine(folder, "model-00001-of-00002.safetensors"), Safetensors(header, data));
        File.WriteAllBytes(Path.Combine(folder, "model-00002-of-00002.safetensors"),
            Safetensors("""{"e":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", new byte[8]));
        const string index = """{"metadata":{"total_size":48},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors","d":"model-00001-of-00002.safetensors","e":"model-00002-of-00002.safetensors"}}""";
        string path = Path.Combine(folder, "model.safetensors.index.json");
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            string text = r.Next(25) == 0 ? Encoding.UTF8.GetString(Mutations.RandomBytes(r, 100)) : Mutations.MutateJson(index, r);
            return new FuzzCase<string>(text, $"seed {seed}: {text}", path, folder);
        });
        var stats = FuzzHarness.Run("shard index", gen, text =>
        {
            File.WriteAllText(path, text);
            Workbook.Hub.ModelFiles.ShardsOf(path);
            using var files = WeightFiles.Open(folder);
            foreach (var name in files.Names) files.Read(name).Dispose();
        }, new[] { typeof(CheckpointException), typeof(Workbook.Hub.HubException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    // ---------------------------------------------------------------- torch.save / TransformerLens pickles

    static readonly string[] HostileGlobals = { "os\nsystem", "builtins\neval", "builtins\nexec", "__builtin__\ngetattr", "subprocess\nPopen", "torch\nload", "posix\nsystem", "torch._utils\n_rebuild_qtensor", "collections\ndefaultdict" };

    static byte[] ValidPickle(out List<(string Key, byte[] Data)> storages)
    {
        string path = Path.GetTempFileName();
        try
        {
            using (var scope = NewDisposeScope())
                new TorchSaveWriter()
                    .Add("embed.W_E", arange(12, dtype: ScalarType.Float32).reshape(3, 4))
                    .Add("blocks.0.ln1.w", ones(4, dtype: ScalarType.Float16))
                    .AddView("unembed.W_U", "embed.W_E", 0, new long[] { 4, 3 }, new long[] { 1, 4 })
                    .Write(path);
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            byte[] Read(string name)
            {
                using var s = zip.GetEntry(name)!.Open();
                using var ms = new MemoryStream();
                s.CopyTo(ms);
                return ms.ToArray();
            }
            storages = zip.Entries.Where(e => e.FullName.StartsWith("archive/data/", StringComparison.Ordinal))
                .Select(e => (e.FullName["archive/data/".Length..], Read(e.FullName))).ToList();
            return Read("archive/data.pkl");
        }
        finally
        {
            File.Delete(path);
        }
    }

    static byte[] Replace(byte[] data, string from, string to)
    {
        var text = Encoding.Latin1.GetString(data);
        return Encoding.Latin1.GetBytes(text.Replace(from, to));
    }

    Gen<FuzzCase<byte[]>> PickleCases(string path)
    {
        var pickle = ValidPickle(out var storages);
        string scratch = path + ".build";
        return Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            var s = storages.Select(x => (x.Key, (byte[])x.Data.Clone())).ToList();
            byte[] p = pickle;
            string what;
            switch (r.Next(6))
            {
                case 0:
                case 1:
                    p = Mutations.MutateBytes(pickle, r);
                    what = "pickle byte edits";
                    break;
                case 2:
                    string g = HostileGlobals[r.Next(HostileGlobals.Length)];
                    p = Replace(pickle, r.Next(2) == 0 ? "collections\nOrderedDict" : "torch._utils\n_rebuild_tensor_v2", g);
                    what = $"global {g.Replace('\n', '.')}";
                    break;
                case 3:
                    // a storage shorter than its tensor, or missing
                    int k = r.Next(s.Count);
                    if (r.Next(2) == 0) s[k] = (s[k].Key, s[k].Item2[..r.Next(s[k].Item2.Length)]);
                    else s.RemoveAt(k);
                    what = "truncated or missing storage";
                    break;
                default:
                    what = "zip byte edits";
                    break;
            }
            TorchSaveWriter.WriteZip(scratch, p, s);
            var bytes = File.ReadAllBytes(scratch);
            if (what == "zip byte edits") bytes = r.Next(8) == 0 ? Mutations.RandomBytes(r, 400) : Mutations.MutateBytes(bytes, r);
            return new FuzzCase<byte[]>(bytes, $"seed {seed}: {what}", path);
        });
    }

    static void ReadTorchCheckpoint(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        using var file = TorchCheckpointFile.Open(path);
        foreach (var name in file.Entries.Keys)
        {
            using var t = file.Read(name);
        }
    }

    [Fact]
    public void TorchSavePicklesAndZips()
    {
        string path = Path.Combine(_dir, "model_final.pth");
        var stats = FuzzHarness.Run("torch.save pickle", PickleCases(path), bytes => ReadTorchCheckpoint(path, bytes), Rejections, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }
}
