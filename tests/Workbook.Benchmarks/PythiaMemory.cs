using System.Diagnostics;
using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Benchmarks;

/// <summary>
/// Peak memory of loading a model of Pythia-2.8B's shape (<c>--memory-pythia</c>). Writes random float16 weights as
/// sharded safetensors with a GPT-NeoX config (5.6 GB on disk, like the hub checkpoint), then loads them in a fresh
/// child process, which reports its peak resident set size (VmHWM) after loading and after a short forward pass.
/// The shards are deleted afterwards unless <c>--keep</c> is given.
/// <code>dotnet run -c Release --project tests/Workbook.Benchmarks -- --memory-pythia [--dtype float32|bfloat16|float16] [--dir DIR] [--keep] [--layers N]</code>
/// </summary>
public static class PythiaMemory
{
    // Pythia-2.8B's shape, from the workbook's table of known configs.
    static readonly int DModel = KnownConfigs.Pythia28B.DModel, Heads = KnownConfigs.Pythia28B.NHeads, Mlp = KnownConfigs.Pythia28B.DMlp,
        Vocab = KnownConfigs.Pythia28B.DVocab, Ctx = KnownConfigs.Pythia28B.NCtx;

    public sealed record Result(string DType, int Layers, long Parameters, long ParameterBytes, long RssBeforeLoad, long PeakRssAfterLoad, long PeakRssAfterForward, long RssAfterForward, double LoadSeconds);

    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
        if (args.Contains("--child")) return Child(Arg("--dir", ""), Arg("--dtype", "float32"));

        int layers = int.Parse(Arg("--layers", "32"));
        var dtypes = Arg("--dtype", "float32").Split(',');
        string dir = Arg("--dir", Path.Combine(Path.GetTempPath(), "workbook-pythia-shape"));
        bool keep = args.Contains("--keep");
        try
        {
            if (!File.Exists(Path.Combine(dir, "model.safetensors.index.json")) || args.Contains("--rewrite"))
                Write(dir, layers);
            foreach (var dtype in dtypes)
            {
                var result = LoadInChild(dir, dtype);
                Console.WriteLine($"{dtype,-9} layers {result.Layers}  parameters {result.Parameters / 1e9:F3} B ({result.ParameterBytes / 1e9:F2} GB as {dtype})  " +
                                  $"RSS before load {result.RssBeforeLoad / 1e9:F2} GB  peak after load {result.PeakRssAfterLoad / 1e9:F2} GB  " +
                                  $"peak after a 16-token forward {result.PeakRssAfterForward / 1e9:F2} GB (resident after it {result.RssAfterForward / 1e9:F2} GB)  load {result.LoadSeconds:F0} s");
                Console.WriteLine("  " + JsonSerializer.Serialize(result));
            }
        }
        finally
        {
            if (!keep && Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
                Console.WriteLine($"deleted {dir}");
            }
        }
        return 0;
    }

    /// <summary>Random float16 weights in Hugging Face GPT-NeoX names, in shards of about 1 GB.</summary>
    static void Write(string dir, int layers)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["architectures"] = new[] { "GPTNeoXForCausalLM" }, ["model_type"] = "gpt_neox", ["hidden_size"] = DModel,
            ["num_attention_heads"] = Heads, ["num_hidden_layers"] = layers, ["intermediate_size"] = Mlp, ["vocab_size"] = Vocab,
            ["max_position_embeddings"] = Ctx, ["rotary_pct"] = 0.25, ["rotary_emb_base"] = 10000, ["use_parallel_residual"] = true,
            ["layer_norm_eps"] = 1e-5, ["hidden_act"] = "gelu", ["tie_word_embeddings"] = false, ["torch_dtype"] = "float16",
            ["bos_token_id"] = 0, ["eos_token_id"] = 0,
        }));
        var shapes = new List<(string Name, long[] Shape)> { ("gpt_neox.embed_in.weight", new long[] { Vocab, DModel }) };
        for (int l = 0; l < layers; l++)
        {
            string p = $"gpt_neox.layers.{l}.";
            shapes.AddRange(new (string, long[])[]
            {
                (p + "input_layernorm.weight", new long[] { DModel }), (p + "input_layernorm.bias", new long[] { DModel }),
                (p + "post_attention_layernorm.weight", new long[] { DModel }), (p + "post_attention_layernorm.bias", new long[] { DModel }),
                (p + "attention.query_key_value.weight", new long[] { 3 * DModel, DModel }), (p + "attention.query_key_value.bias", new long[] { 3 * DModel }),
                (p + "attention.dense.weight", new long[] { DModel, DModel }), (p + "attention.dense.bias", new long[] { DModel }),
                (p + "mlp.dense_h_to_4h.weight", new long[] { Mlp, DModel }), (p + "mlp.dense_h_to_4h.bias", new long[] { Mlp }),
                (p + "mlp.dense_4h_to_h.weight", new long[] { DModel, Mlp }), (p + "mlp.dense_4h_to_h.bias", new long[] { DModel }),
            });
        }
        shapes.Add(("gpt_neox.final_layer_norm.weight", new long[] { DModel }));
        shapes.Add(("gpt_neox.final_layer_norm.bias", new long[] { DModel }));
        shapes.Add(("embed_out.weight", new long[] { Vocab, DModel }));

        const long shardBytes = 1L << 30;
        var shards = new List<List<(string Name, long[] Shape)>> { new() };
        long current = 0;
        foreach (var s in shapes)
        {
            long bytes = s.Shape.Aggregate(2L, (a, b) => a * b);
            if (current > 0 && current + bytes > shardBytes)
            {
                shards.Add(new());
                current = 0;
            }
            shards[^1].Add(s);
            current += bytes;
        }
        var weightMap = new Dictionary<string, string>();
        var sw = Stopwatch.StartNew();
        manual_seed(0);
        for (int i = 0; i < shards.Count; i++)
        {
            string file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            using var scope = NewDisposeScope();
            var tensors = shards[i].Select(s => (s.Name, (rand(s.Shape) * 0.04 - 0.02).to(ScalarType.Float16))).ToList();
            SafetensorsWriter.Write(Path.Combine(dir, file), tensors);
            foreach (var s in shards[i]) weightMap[s.Name] = file;
            Console.WriteLine($"wrote {file} ({shards[i].Count} tensors) after {sw.Elapsed.TotalSeconds:F0} s");
        }
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), JsonSerializer.Serialize(new { metadata = new { }, weight_map = weightMap }));
    }

    static Result LoadInChild(string dir, string dtype)
    {
        string exe = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet") psi.ArgumentList.Add(typeof(PythiaMemory).Assembly.Location);
        foreach (var a in new[] { "--memory-pythia", "--child", "--dir", dir, "--dtype", dtype }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"the loading process failed ({p.ExitCode}): {output}");
        return JsonSerializer.Deserialize<Result>(output.Trim().Split('\n')[^1])!;
    }

    static int Child(string dir, string dtypeName)
    {
        var dtype = dtypeName switch
        {
            "float32" => ScalarType.Float32, "float16" => ScalarType.Float16, "bfloat16" => ScalarType.BFloat16,
            _ => throw new ArgumentException($"--dtype {dtypeName}"),
        };
        using (var warm = ones(4)) { } // load TorchSharp's native libraries before the baseline
        GC.Collect();
        long before = MemoryProbe.RssBytes();
        var sw = Stopwatch.StartNew();
        using var model = ModelLoader.Load(dir, new LoadOptions { DType = dtype });
        double seconds = sw.Elapsed.TotalSeconds;
        long peakLoad = MemoryProbe.PeakRssBytes();
        long parameters = model.parameters().Sum(p => p.NumberOfElements);
        long parameterBytes = model.parameters().Sum(p => p.NumberOfElements * p.ElementSize);
        using (var scope = NewDisposeScope())
        using (no_grad())
            model.Forward(arange(16, dtype: ScalarType.Int64).unsqueeze(0));
        long peakForward = MemoryProbe.PeakRssBytes();
        Console.WriteLine(JsonSerializer.Serialize(new Result(dtypeName, model.Config.NLayers, parameters, parameterBytes, before, peakLoad, peakForward, MemoryProbe.RssBytes(), seconds)));
        return 0;
    }
}
