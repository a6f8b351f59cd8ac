using System.Text;
using CsCheck;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Embedded;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Support;
using Workbook.Tokenization;
using Xunit.Abstractions;

namespace Workbook.Tests.Reliability;

/// <summary>
/// Fuzzing the text formats: tokenizer files (tokenizer.json BPE and word-level), AutoCircuit datasets (read and
/// tokenized), circuit files (concrete and symbolic, resolved against a graph), edge names and scenario files.
/// Rejections: <see cref="TokenizerException"/> (BPE tokenizer files), <see cref="FormatException"/> (every other
/// file format), <see cref="ArgumentException"/> (unknown nodes, labels, words; inputs that do not fit the model).
/// </summary>
[Trait("Category", "Fuzz")]
public sealed class TextFormatFuzzTests : IDisposable
{
    readonly ITestOutputHelper _output;
    readonly string _dir = Directory.CreateTempSubdirectory("wb-fuzz-text-").FullName;

    public TextFormatFuzzTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static TransformerConfig TinyGpt2Config => HuggingFaceCheckpoint.ReadConfig(ConfigJson.Load(TestFiles.Fixture("tiny-gpt2/config.json")), "tiny-gpt2");

    static Gen<FuzzCase<string>> JsonCases(string[] bases, string mustName, params string[] alsoNamed) => Gen.Int.Select(seed =>
    {
        var r = new Random(seed);
        string text = r.Next(25) == 0 ? Encoding.UTF8.GetString(Mutations.RandomBytes(r, 200)) : Mutations.MutateJson(bases[r.Next(bases.Length)], r);
        return new FuzzCase<string>(text, $"seed {seed}: {text}", alsoNamed.Prepend(mustName).ToArray());
    });

    // ---------------------------------------------------------------- tokenizer.json (BPE)

    /// <summary>A byte-level BPE tokenizer with merges, added tokens, normalizers and a Split pre-tokenizer.</summary>
    static string BpeTokenizerJson()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Hub.HubTests.MinimalByteLevelTokenizer())!.AsObject();
        var vocab = node["model"]!["vocab"]!.AsObject();
        vocab["Ġt"] = 257; vocab["he"] = 258; vocab["Ġthe"] = 259; vocab["<pad>"] = 260;
        node["model"]!["merges"] = new System.Text.Json.Nodes.JsonArray("Ġ t", "h e", "Ġt he");
        node["model"]!["unk_token"] = "<pad>";
        node["added_tokens"] = System.Text.Json.Nodes.JsonNode.Parse("""[{"id":256,"content":"<|endoftext|>","special":true,"normalized":false},{"id":260,"content":"<pad>","lstrip":true,"rstrip":true,"single_word":true,"normalized":true}]""");
        node["normalizer"] = System.Text.Json.Nodes.JsonNode.Parse("""{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Replace","pattern":{"String":"``"},"content":"\""}]}""");
        node["pre_tokenizer"] = System.Text.Json.Nodes.JsonNode.Parse("""{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"MergedWithNext","invert":false},{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]}""");
        return node.ToJsonString();
    }

    /// <summary>Patterns with catastrophic backtracking: a tokenizer file must not be able to hang encoding.</summary>
    static readonly string[] HostileRegexes = { "(a+)+$", "(a|aa)+b", "(.*a){25}", "((a+)*)*c" };

    static readonly string[] Texts = { "the theme", "When Mary and John went to the store, John gave", " 12345 ", "naïve café 漢字 😀", "<|endoftext|>the<pad> x", "``quoted``", "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!" };

    [Fact]
    public void BpeTokenizerFiles()
    {
        const string name = "fuzz/tokenizer.json";
        string baseJson = BpeTokenizerJson();
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            string text = r.Next(200) == 0
                ? baseJson.Replace("\\\\s+", HostileRegexes[r.Next(HostileRegexes.Length)].Replace("\\", "\\\\"))
                : r.Next(25) == 0 ? Encoding.UTF8.GetString(Mutations.RandomBytes(r, 200)) : Mutations.MutateJson(baseJson, r);
            return new FuzzCase<string>(text, $"seed {seed}: {text}", name);
        });
        HuggingFaceTokenizer.RegexTimeout = TimeSpan.FromMilliseconds(100);
        var stats = FuzzHarness.Run("tokenizer.json (BPE)", gen, json =>
        {
            var tokenizer = HuggingFaceTokenizer.FromJson(json, name, json.Length % 2 == 0 ? "<|endoftext|>" : null);
            foreach (var text in Texts)
            {
                var ids = tokenizer.Encode(text);
                tokenizer.Decode(ids);
            }
        }, new[] { typeof(TokenizerException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 10, stats.ToString());
    }

    // ---------------------------------------------------------------- tokenizer.json (word level)

    [Fact]
    public void WordLevelTokenizerFiles()
    {
        string folder = Path.Combine(_dir, "wordlevel");
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "tokenizer.json");
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string baseJson = File.ReadAllText(Path.Combine(TestFiles.RepoRoot, "data/models/toy-ioi/tokenizer.json"));
        string baseConfig = File.ReadAllText(Path.Combine(TestFiles.RepoRoot, "data/models/toy-ioi/tokenizer_config.json"));
        // The file's text through FromJson (no disk), with the BOS from a mutated tokenizer_config.json through Load for every 50th case.
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            bool config = r.Next(50) == 0;
            string text = Mutations.MutateJson(config ? baseConfig : baseJson, r);
            return new FuzzCase<(bool Config, string Text)>((config, text), $"seed {seed}: {(config ? "tokenizer_config.json" : "tokenizer.json")} {text}", config ? configPath : path, path);
        });
        File.WriteAllText(path, baseJson);
        var stats = FuzzHarness.Run("tokenizer.json (word level)", gen, c =>
        {
            WordLevelTokenizer tokenizer;
            if (c.Config)
            {
                File.WriteAllText(configPath, c.Text);
                tokenizer = WordLevelTokenizer.Load(path);
            }
            else tokenizer = WordLevelTokenizer.FromJson(c.Text, path, c.Text.Length % 2 == 0 ? "<|endoftext|>" : null);
            var ids = tokenizer.Encode("Then, Mary and John went to the store.");
            tokenizer.Decode(ids);
        }, new[] { typeof(FormatException), typeof(ArgumentException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 10, stats.ToString());
    }

    // ---------------------------------------------------------------- AutoCircuit datasets

    [Fact]
    public void AutoCircuitDatasets()
    {
        const string source = "fuzzset.json";
        var tokenizer = ToyIoi.Tokenizer;
        var ioi = KnownTasks.Ioi.Generate(tokenizer, 0, 3)[0];
        var tracr = KnownTasks.TracrReverse.Generate(null, 0, 3)[0];
        var docstring = KnownTasks.Docstring.Generate(null, 0, 2)[0];
        string[] bases = { AutoCircuitJson.Write(ioi), AutoCircuitJson.Write(tracr), AutoCircuitJson.Write(docstring) };
        var stats = FuzzHarness.Run("AutoCircuit dataset", JsonCases(bases, source, "Dataset 'fuzzset'"), json =>
        {
            var dataset = AutoCircuitJson.Read(json, "fuzzset", source);
            var tokenized = TokenizedDataset.Create(dataset, tokenizer, prependBos: json.Length % 2 == 0, tailDivergence: true);
            tokenized.Take(1);
        }, new[] { typeof(FormatException), typeof(ArgumentException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    // ---------------------------------------------------------------- circuits

    [Fact]
    public void CircuitFiles()
    {
        const string source = "fuzz/circuit.json";
        var config = TinyGpt2Config;
        var edges = ComputationGraph.Factorized(config, separateQkv: true);
        var heads = ComputationGraph.Factorized(config, separateQkv: false);
        var nodes = ComputationGraph.Residual(config);
        var labels = new Dictionary<string, int> { ["IO"] = 2, ["S2"] = 5, ["end"] = 9 };
        var positions = new WordPositions(labels.Select(kv => KeyValuePair.Create(kv.Key, kv.Value)));
        var concrete = Circuit.Parse(edges, new[] { "Resid Start->A1.0.V", "A1.0->Resid End@3", "MLP 0->Resid End", "A0.2->A2.1.Q@9" });
        string[] bases =
        {
            File.ReadAllText(Path.Combine(TestFiles.RepoRoot, "data/circuits/tiny-gpt2-example.json")),
            CircuitJson.Write(concrete, new Dictionary<int, string> { [9] = "end" }),
            SymbolicCircuitJson.Write(SymbolicCircuit.FromCircuit("nodes", Circuit.Parse(nodes, new[] { "A0.1->Resid Mid 0", "MLP 1->Resid Post 1" }))),
            """{"name":"labels","edges":[{"src":"A0.1","dest":"A1.2","position":"S2"},{"src":"A1.0","dest":"Resid End","position":"IO..end"},{"src":"A2.3","dest":"Resid End","position":"S2+1","allTokensOnly":false}]}""",
        };
        var stats = FuzzHarness.Run("circuit JSON", JsonCases(bases, source, "Circuit '"), json =>
        {
            CircuitJson.Read(edges, json, labels, source);
            var symbolic = SymbolicCircuitJson.Read(json, "fuzzc", source);
            var graph = symbolic.View == GraphView.Residual ? nodes : symbolic.SeparateQkv ? edges : heads;
            foreach (var mode in new[] { TokenPositions.All, TokenPositions.Specific })
                symbolic.Resolve(graph, positions, mode);
        }, new[] { typeof(FormatException), typeof(ArgumentException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    [Fact]
    public void EdgeNames()
    {
        var graph = ComputationGraph.Factorized(TinyGpt2Config, separateQkv: true);
        var names = graph.Edges.Take(200).Select(e => e.Name).ToArray();
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            var lines = Enumerable.Range(0, 1 + r.Next(4)).Select(_ =>
            {
                string line = names[r.Next(names.Length)] + (r.Next(3) == 0 ? "@" + r.Next(-2, 20) : "");
                return r.Next(2) == 0 ? line : Mutations.FlipChars(r.Next(3) == 0 ? Mutations.InsertText(line, r) : line, r);
            }).ToArray();
            return new FuzzCase<string[]>(lines, $"seed {seed}: {string.Join(" | ", lines)}", "line ");
        });
        var stats = FuzzHarness.Run("edge names", gen, lines =>
        {
            var circuit = Circuit.Parse(graph, lines);
            if (circuit.IsPositional) circuit.Complement(20);
        }, new[] { typeof(FormatException), typeof(ArgumentException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 10, stats.ToString());
    }

    // ---------------------------------------------------------------- scenario files

    [Fact]
    public void ScenarioFiles()
    {
        const string source = "fuzz/scenarios.json";
        var config = TinyGpt2Config;
        // The fixture, without its expected logits (large) and with fewer scenarios, as the base.
        var full = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(TestFiles.Fixture("tiny-gpt2-scenarios.json")))!.AsObject();
        var scenarios = full["scenarios"]!.AsArray();
        var small = new System.Text.Json.Nodes.JsonArray();
        foreach (var s in scenarios.Take(8))
        {
            var copy = s!.DeepClone().AsObject();
            foreach (var key in copy.Select(kv => kv.Key).Where(k => k.Contains("logit")).ToList()) copy.Remove(key);
            if (copy["patched_edges"] is System.Text.Json.Nodes.JsonArray pe && pe.Count > 6)
                copy["patched_edges"] = new System.Text.Json.Nodes.JsonArray(pe.Take(6).Select(x => x!.DeepClone()).ToArray());
            small.Add(copy);
        }
        full["scenarios"] = small;
        full.Remove("hf_vs_factorized_max_abs_diff");
        string[] bases = { full.ToJsonString() };
        var stats = FuzzHarness.Run("scenario file", JsonCases(bases, source), json =>
        {
            var file = ScenarioFile.Parse(new MemoryStream(Encoding.UTF8.GetBytes(json)), source);
            var graph = file.GraphFor(config);
            foreach (var scenario in file.Scenarios)
            {
                using var masks = PatchMasks.ForEdges(graph, file.EdgesOf(scenario, graph), file.Clean.GetLength(1));
            }
        }, new[] { typeof(FormatException), typeof(ArgumentException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }
}
