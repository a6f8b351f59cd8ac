using System.Text;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Embedded;
using Workbook.Graph;
using Workbook.Hub;
using Workbook.Tasks;
using Workbook.Tests.Support;
using Workbook.Tokenization;

namespace Workbook.Tests.Reliability;

/// <summary>
/// One test per bug the fuzzers found, with the smallest input that showed it. Each failed before its fix with an
/// exception of an undocumented type (named in the test), a message that did not say which file, or a hang.
/// </summary>
public sealed class FuzzRegressionTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-fuzz-regress-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    static byte[] Safetensors(byte[] header, int dataBytes)
    {
        var result = new byte[8 + header.Length + dataBytes];
        BitConverter.GetBytes((ulong)header.Length).CopyTo(result, 0);
        header.CopyTo(result, 8);
        return result;
    }

    static T Rejected<T>(Action action, params string[] mentions) where T : Exception
    {
        var e = Assert.Throws<T>(action);
        foreach (var m in mentions) Assert.Contains(m, e.Message);
        return e;
    }

    // ---- checkpoints

    [Fact]
    public void SafetensorsOffsetsThatAreStrings()
    {
        // was InvalidOperationException (JsonElement.TryGetInt64 on a string)
        string path = Write("a.safetensors", Safetensors(Encoding.UTF8.GetBytes("""{"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}}"""), 8));
        Rejected<CheckpointException>(() => SafetensorsFile.Open(path), path, "data offsets must be integers");
    }

    [Fact]
    public void SafetensorsHeaderThatIsNotUtf8()
    {
        // was InvalidOperationException ("Cannot transcode invalid UTF-8") when the tensor names were read
        var header = Encoding.UTF8.GetBytes("""{"a?":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""");
        header[3] = 0xFF;
        string path = Write("b.safetensors", Safetensors(header, 4));
        Rejected<CheckpointException>(() => SafetensorsFile.Open(path), path, "UTF-8");
        string config = Write("c/config.json", new byte[] { (byte)'{', (byte)'"', 0xC3, (byte)'"', (byte)':', (byte)'1', (byte)'}' });
        Rejected<CheckpointException>(() => ConfigJson.Load(config), config, "UTF-8");
    }

    static byte[] TorchZip(string dir, Func<byte[], byte[]>? editPickle = null)
    {
        string path = Path.Combine(dir, "t.pth");
        using (TorchSharp.torch.NewDisposeScope())
            new TorchSaveWriter().Add("w", TorchSharp.torch.ones(2, 2)).Write(path);
        if (editPickle is null) return File.ReadAllBytes(path);
        using var zip = System.IO.Compression.ZipFile.OpenRead(path);
        byte[] Read(string name)
        {
            using var s = zip.GetEntry(name)!.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            return ms.ToArray();
        }
        var pickle = editPickle(Read("archive/data.pkl"));
        var storage = Read("archive/data/0");
        zip.Dispose();
        TorchSaveWriter.WriteZip(path, pickle, new[] { ("0", storage) });
        return File.ReadAllBytes(path);
    }

    [Fact]
    public void TorchZipWithADamagedCentralDirectory()
    {
        // was InvalidDataException from ZipArchive.Entries, which reads the central directory lazily
        var bytes = TorchZip(_dir);
        int eocd = bytes.Length - 22; // end-of-central-directory record: its entry counts at offsets 8 and 10
        bytes[eocd + 8] ^= 0x40;
        string path = Write("damaged.pth", bytes);
        Rejected<CheckpointException>(() => TorchCheckpointFile.Open(path).Dispose(), path, "corrupt zip archive");
    }

    [Fact]
    public void PickleWithANonNumericMemoKey()
    {
        // was FormatException from long.Parse of a PUT argument
        string path = Write("memo.pth", TorchZip(_dir, p => new byte[] { 0x80, 2, (byte)'N', (byte)'p', (byte)'x', (byte)'\n', (byte)'.' }));
        Rejected<CheckpointException>(() => TorchCheckpointFile.Open(path).Dispose(), path, "memo key");
    }

    [Fact]
    public void PickleWithANonStringGlobalNamesTheFile()
    {
        // STACK_GLOBAL on two integers: the message did not name the file
        string path = Write("global.pth", TorchZip(_dir, p => new byte[] { 0x80, 2, (byte)'K', 3, (byte)'K', 4, 0x93, (byte)'.' }));
        Rejected<CheckpointException>(() => TorchCheckpointFile.Open(path).Dispose(), path, "module name");
    }

    [Fact]
    public void InconsistentConfigNamesTheFile()
    {
        // an odd rotary dimension: was an ArgumentException naming the model only, not the file
        var config = ConfigJson.Parse("""{"model_type":"gpt_neox","hidden_size":64,"num_attention_heads":4,"num_hidden_layers":2,"intermediate_size":256,"vocab_size":512,"max_position_embeddings":64,"rotary_pct":0.1}""", "x/config.json");
        Rejected<CheckpointException>(() => HuggingFaceCheckpoint.ReadConfig(config, "m"), "x/config.json", "rotary dimension");
    }

    [Fact]
    public void ConfigFarLargerThanItsWeightsFailsBeforeAllocating()
    {
        // n_layer 1000 next to a 3-layer checkpoint: the model (~200 MB here, terabytes for a wider config) was allocated first
        string folder = Path.Combine(_dir, "big");
        Directory.CreateDirectory(folder);
        File.Copy(TestFiles.Fixture("tiny-gpt2/model.safetensors"), Path.Combine(folder, "model.safetensors"));
        File.WriteAllText(Path.Combine(folder, "config.json"), File.ReadAllText(TestFiles.Fixture("tiny-gpt2/config.json")).Replace("\"n_layer\": 3", "\"n_layer\": 1000"));
        Rejected<CheckpointException>(() => ModelLoader.LoadFolder(folder), "config.json", "does not belong to these weights");
    }

    [Fact]
    public void ShardIndexThatIsNotAnObject()
    {
        // was InvalidOperationException (TryGetProperty on an array)
        string path = Write("model.safetensors.index.json", "[1, 2]");
        Rejected<HubException>(() => ModelFiles.ShardsOf(path), path, "weight_map");
    }

    // ---- tokenizers

    static string MinimalBpe(Action<System.Text.Json.Nodes.JsonObject> edit)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Hub.HubTests.MinimalByteLevelTokenizer())!.AsObject();
        edit(node);
        return node.ToJsonString();
    }

    static System.Text.Json.Nodes.JsonNode Json(string text) => System.Text.Json.Nodes.JsonNode.Parse(text)!;

    [Fact]
    public void TokenizerRegexThatBacktracksCatastrophicallyFailsInsteadOfHanging()
    {
        var saved = HuggingFaceTokenizer.RegexTimeout;
        HuggingFaceTokenizer.RegexTimeout = TimeSpan.FromMilliseconds(200);
        try
        {
            string json = MinimalBpe(n => n["pre_tokenizer"] = Json("""{"type":"Split","pattern":{"Regex":"(.*a){25}"},"behavior":"Isolated"}"""));
            var tokenizer = HuggingFaceTokenizer.FromJson(json, "slow/tokenizer.json");
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Rejected<TokenizerException>(() => tokenizer.Encode(new string('a', 60) + "!"), "slow/tokenizer.json", "backtracks");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
        }
        finally
        {
            HuggingFaceTokenizer.RegexTimeout = saved;
        }
    }

    [Fact]
    public void TokenizerFileWithBadIds()
    {
        // an id of int.MaxValue: was OverflowException / OutOfMemoryException sizing the id table
        Rejected<TokenizerException>(() => HuggingFaceTokenizer.FromJson(MinimalBpe(n => n["model"]!["vocab"]!["!"] = int.MaxValue), "ids/tokenizer.json"),
            "ids/tokenizer.json", "integer id");
        // a negative added-token id: was IndexOutOfRangeException
        Rejected<TokenizerException>(() => HuggingFaceTokenizer.FromJson(MinimalBpe(n => n["added_tokens"]![0]!["id"] = -3), "ids/tokenizer.json"),
            "ids/tokenizer.json", "added token");
        Rejected<TokenizerException>(() => HuggingFaceTokenizer.FromJson(MinimalBpe(n => n["decoder"]!["type"] = null), "ids/tokenizer.json"),
            "ids/tokenizer.json", "decoder");
    }

    [Fact]
    public void ReplaceNormalizerWithoutContent()
    {
        // was NullReferenceException while encoding
        string json = MinimalBpe(n => n["normalizer"] = Json("""{"type":"Replace","pattern":{"String":"x"},"content":null}"""));
        Rejected<TokenizerException>(() => HuggingFaceTokenizer.FromJson(json, "norm/tokenizer.json").Encode("x"), "norm/tokenizer.json", "content");
    }

    [Theory]
    [InlineData("\"Then\":", "\"Then\": 1, \"Then\":", "same key")] // was ArgumentException from JsonObject, without the file
    [InlineData("\"type\": \"WordLevel\"", "\"type\": 7", "malformed")] // was InvalidOperationException
    public void WordLevelFileWithDuplicateKeysOrMistypedValues(string from, string to, string mention)
    {
        string text = File.ReadAllText(Path.Combine(TestFiles.RepoRoot, "data/models/toy-ioi/tokenizer.json"));
        Assert.Contains(from, text);
        string path = Write("wl/tokenizer.json", text.Replace(from, to));
        Rejected<FormatException>(() => WordLevelTokenizer.Load(path), path, mention);
        Rejected<FormatException>(() => WordLevelTokenizer.Load(Write("wl2/tokenizer.json", "[1]")), "wl2", "JSON object");
    }

    // ---- datasets, circuits

    static string Dataset(string wordIdxs, string answers, string clean = "\"Then, Mary and John went to the store. John gave a drink to\"") =>
        $$"""{"word_idxs": {{{wordIdxs}}}, "prompts": [{"clean": {{clean}}, "corrupt": {{clean}}, "answers": {{answers}}, "wrong_answers": {{answers}}}]}""";

    [Fact]
    public void DatasetWithADuplicateLabel()
    {
        // was ArgumentException from WordPositions, without the file
        Rejected<FormatException>(() => AutoCircuitJson.Read(Dataset("\"IO\": 2, \"IO\": 3", "[\" Mary\"]"), "d", "dup.json"), "dup.json", "\"IO\" twice");
    }

    [Fact]
    public void DatasetWithIntegerAnswersBeyondInt()
    {
        // was OverflowException (checked int conversion)
        Rejected<FormatException>(() => AutoCircuitJson.Read(Dataset("\"end\": 1", "[[9223372036854775807]]", "[1, 2]"), "d", "big.json"), "big.json", "not a valid token id");
    }

    [Fact]
    public void DatasetPositionAtIntMaxWithABos()
    {
        // was ArgumentException "must not be negative" (int overflow when the BOS offset was added), without the dataset
        var dataset = AutoCircuitJson.Read(Dataset("\"end\": 2147483647", "[\" Mary\"]"), "overflow", "overflow.json");
        Rejected<ArgumentException>(() => TokenizedDataset.Create(dataset, ToyIoi.Tokenizer, prependBos: true, tailDivergence: false), "Dataset 'overflow'", "'end' is 2147483648");
    }

    [Fact]
    public void DatasetPromptTheTokenizerCannotEncodeNamesThePrompt()
    {
        // was the tokenizer's error alone: no dataset, no prompt index
        var dataset = AutoCircuitJson.Read(Dataset("\"end\": 1", "[\" Mary\"]", "\"def xyzzy\""), "words", "words.json");
        Rejected<ArgumentException>(() => TokenizedDataset.Create(dataset, ToyIoi.Tokenizer, false, false), "Dataset 'words', prompt 0, clean prompt", "'def'");
    }

    [Fact]
    public void EdgeNameWithAnUnknownNodeNamesTheLine()
    {
        var graph = ComputationGraph.Factorized(HuggingFaceCheckpoint.ReadConfig(ConfigJson.Load(TestFiles.Fixture("tiny-gpt2/config.json")), "tiny-gpt2"));
        Rejected<UnknownNodeException>(() => Circuit.Parse(graph, new[] { "A0.1->A1.2.Q", "# comment", "A0.9->A1.2.Q" }), "line 3", "A0.9");
    }
}
