using System.CommandLine;
using System.IO.Compression;
using System.Text;
using CsCheck;
using Workbook.Checkpoints;
using Workbook.Cli;
using Workbook.Hub;
using Workbook.Tests.Support;
using Workbook.Tests.Tokenization;
using Workbook.Tokenization;
using Workbook.Util;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Workbook.Tests.Reliability;

/// <summary>
/// Generators for the shapes of issue 16's attacks, run through the fuzz harness: torch.save files whose pickles flood
/// the stack or memo, run past STOP or view their storages with hostile strides; hub caches holding link loops, links out
/// of the cache, devices and FIFOs; the model API's answers in any shape; numeric flags of every verb at and beyond their
/// bounds; long words for the BPE merge loop; and text full of control characters for the terminal.
/// </summary>
[Trait("Category", "Fuzz")]
public sealed class HostileInputFuzzTests : IDisposable
{
    readonly ITestOutputHelper _output;
    readonly string _dir = Directory.CreateTempSubdirectory("wb-fuzz-hostile-").FullName;

    public HostileInputFuzzTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---------------------------------------------------------------- torch.save: floods, trailing bytes, byteorder, views

    /// <summary>An opcode repeated: DUP, MEMOIZE, EMPTY_LIST+APPEND, MARK, EMPTY_DICT; around the unpickler's bounds.</summary>
    static byte[] Flood(Random r, out string what)
    {
        var (unit, name) = r.Next(5) switch
        {
            0 => ("2"u8.ToArray(), "DUP"),
            1 => (new byte[] { 0x94 }, "MEMOIZE"),
            2 => ("]a"u8.ToArray(), "EMPTY_LIST APPEND"),
            3 => ("("u8.ToArray(), "MARK"),
            _ => ("}"u8.ToArray(), "EMPTY_DICT"),
        };
        long bound = name switch { "MEMOIZE" => RestrictedUnpickler.MaxMemo, "EMPTY_LIST APPEND" => RestrictedUnpickler.MaxObjects, _ => RestrictedUnpickler.MaxStack };
        // Mostly small floods; one in eight at the bound, just under or just over it (those take a second each).
        long count = r.Next(8) switch { 0 => bound - r.Next(0, 3), 1 => bound + r.Next(1, 1000), _ => r.Next(1, 1000) };
        what = $"{count:N0} x {name}";
        var ms = new MemoryStream();
        ms.Write(new byte[] { 0x80, 2, (byte)'}' });
        for (long i = 0; i < count; i++) ms.Write(unit);
        ms.WriteByte((byte)'.');
        return ms.ToArray();
    }

    Gen<FuzzCase<(byte[] Pickle, byte[] Byteorder, List<(string, byte[])> Storages)>> TorchCases(string path)
    {
        static byte[] ValidPickle(long offset, long[] shape, long[] strides, out List<(string, byte[])> storages)
        {
            using var scope = NewDisposeScope(); // tensors freed here, never by the finalizer thread mid-call
            var w = new TorchSaveWriter().Add("base", arange(24, dtype: ScalarType.Float32)).AddView("view", "base", offset, shape, strides);
            storages = w.Storages.ToList();
            return w.Pickle();
        }
        long[] Dims(Random r, int n) => Enumerable.Range(0, n).Select(_ => r.Next(8) switch
        {
            0 => 0L, 1 => 1L, 2 => (long)r.Next(2, 30), 3 => int.MaxValue, 4 => 1L << 40, 5 => long.MaxValue / 2, _ => (long)r.Next(1, 6),
        }).ToArray();
        long[] Strides(Random r, int n) => Enumerable.Range(0, n).Select(_ => r.Next(6) switch
        {
            0 => 0L, 1 => 1L, 2 => (long)r.Next(2, 30), 3 => 1L << 40, _ => (long)r.Next(1, 8),
        }).ToArray();
        return Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            byte[] byteorder = "little"u8.ToArray();
            string what;
            List<(string, byte[])> storages;
            byte[] pickle;
            switch (r.Next(4))
            {
                case 0:
                    pickle = Flood(r, out what);
                    storages = new();
                    break;
                case 1:
                    pickle = ValidPickle(0, new long[] { 4, 6 }, new long[] { 6, 1 }, out storages);
                    int extra = r.Next(1, 5000);
                    pickle = pickle.Concat(r.Next(2) == 0 ? new byte[extra] : Mutations.RandomBytes(r, extra)).ToArray();
                    what = $"{extra} bytes after STOP";
                    break;
                case 2:
                    pickle = ValidPickle(0, new long[] { 24 }, new long[] { 1 }, out storages);
                    byteorder = r.Next(4) switch
                    {
                        0 => "big"u8.ToArray(), 1 => Array.Empty<byte>(), 2 => Encoding.UTF8.GetBytes(new string('x', r.Next(1, 100_000))),
                        _ => Mutations.RandomBytes(r, 40),
                    };
                    what = $"byteorder record of {byteorder.Length} bytes";
                    break;
                default:
                    int n = r.Next(0, 4);
                    long offset = r.Next(4) == 0 ? (long)r.Next(0, 40) : 0;
                    var shape = Dims(r, n);
                    var strides = Strides(r, n);
                    pickle = ValidPickle(offset, shape, strides, out storages);
                    what = $"view offset {offset} shape [{string.Join(",", shape)}] strides [{string.Join(",", strides)}] of 24 elements";
                    break;
            }
            return new FuzzCase<(byte[], byte[], List<(string, byte[])>)>((pickle, byteorder, storages), $"seed {seed}: {what}", path);
        });
    }

    [Fact]
    public void TorchSaveFloodsTrailersByteordersAndViews()
    {
        string path = Path.Combine(_dir, "hostile.pth");
        var stats = FuzzHarness.Run("torch.save hostile structure", TorchCases(path), c =>
        {
            TorchSaveWriter.WriteZip(path, s => s.Write(c.Pickle), c.Storages, s => s.Write(c.Byteorder), compression: CompressionLevel.Fastest);
            using var file = TorchCheckpointFile.Open(path);
            foreach (var name in file.Entries.Keys)
            {
                using var t = file.Read(name);
                // Whatever is accepted holds no more values than its file stores: no view repeats its storage.
                if (t.NumberOfElements > file.StoredValues) throw new InvalidOperationException($"'{name}' read {t.NumberOfElements} values from {file.StoredValues} stored");
            }
        }, new[] { typeof(CheckpointException) }, _output, share: 0.1);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    // ---------------------------------------------------------------- hub caches with hostile contents

    const string Commit = "0123456789abcdef0123456789abcdef01234567";

    /// <summary>A cached repository whose entries are replaced at random by links (loops, out of the cache, to devices), FIFOs or junk.</summary>
    Gen<FuzzCase<int>> CacheCases(string cache) => Gen.Int.Select(seed => new FuzzCase<int>(seed, $"seed {seed}", cache, "models--"));

    void BuildCache(string cache, int seed, string outside)
    {
        var r = new Random(seed);
        if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true);
        string repo = Path.Combine(cache, "models--test-org--tiny");
        string blobs = Path.Combine(repo, "blobs"), snapshot = Path.Combine(repo, "snapshots", Commit), refs = Path.Combine(repo, "refs");
        Directory.CreateDirectory(blobs);
        Directory.CreateDirectory(refs);
        var config = File.ReadAllBytes(TestFiles.Fixture("tiny-gpt2/config.json"));
        File.WriteAllBytes(Path.Combine(blobs, "a"), config);
        File.WriteAllBytes(Path.Combine(blobs, "b"), File.ReadAllBytes(TestFiles.Fixture("tiny-gpt2/model.safetensors")));
        string HostileTarget() => r.Next(9) switch
        {
            0 => "/dev/zero",
            1 => outside,
            2 => ".",
            3 => "..",
            4 => "loop-" + r.Next(3),
            5 => "../../blobs/missing",
            6 => "/proc/self/root",
            7 => new string('x', 300),
            _ => "../../blobs/a",
        };
        void Entry(string path, string normalTarget)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            switch (r.Next(6))
            {
                case 0:
                    File.CreateSymbolicLink(path, HostileTarget());
                    break;
                case 1 when r.Next(10) == 0:
                    System.Diagnostics.Process.Start("mkfifo", path)!.WaitForExit();
                    break;
                case 2:
                    File.WriteAllBytes(path, Mutations.RandomBytes(r, 64));
                    break;
                default:
                    File.CreateSymbolicLink(path, normalTarget);
                    break;
            }
        }
        if (r.Next(8) == 0)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(snapshot)!);
            Directory.CreateSymbolicLink(snapshot, r.Next(2) == 0 ? Path.GetDirectoryName(outside)! : "..");
        }
        else
        {
            Entry(Path.Combine(snapshot, "config.json"), "../../blobs/a");
            Entry(Path.Combine(snapshot, "model.safetensors"), "../../blobs/b");
            for (int i = r.Next(3); i > 0; i--) File.CreateSymbolicLink(Path.Combine(snapshot, $"loop-{i}"), r.Next(2) == 0 ? "." : $"loop-{(i % 3) + 1}");
            if (r.Next(4) == 0) Directory.CreateSymbolicLink(Path.Combine(snapshot, "sub"), "..");
        }
        switch (r.Next(5))
        {
            case 0: File.CreateSymbolicLink(Path.Combine(refs, "main"), HostileTarget()); break;
            case 1: File.WriteAllText(Path.Combine(refs, "main"), r.Next(2) == 0 ? new string('0', 100_000) : Mutations.RandomText(r, 50)); break;
            default: File.WriteAllText(Path.Combine(refs, "main"), Commit); break;
        }
        if (r.Next(6) == 0) File.CreateSymbolicLink(Path.Combine(refs, "up"), "..");
        if (r.Next(6) == 0) File.CreateSymbolicLink(Path.Combine(blobs, "c.incomplete"), HostileTarget());
    }

    [Fact]
    public void HubCachesWithLinksLoopsDevicesAndFifos()
    {
        string cache = Path.Combine(_dir, "cache");
        string outside = Path.Combine(_dir, "outside", "secret.json");
        Directory.CreateDirectory(Path.GetDirectoryName(outside)!);
        File.WriteAllText(outside, "{\"n_embd\": 16777216}");
        var stats = FuzzHarness.Run("hub cache contents", CacheCases(cache), seed =>
        {
            BuildCache(cache, seed, outside);
            var listed = new HubCache(cache).List();
            if (listed.Count != 1) throw new InvalidOperationException($"listed {listed.Count} repositories");
            using var hub = new ModelHub(new HubOptions { CacheDir = cache, Offline = true });
            var pulled = hub.Ensure(HubModels.TryResolve("test-org/tiny")!);
            // A model the cache hands out is made of files inside the cache.
            foreach (var f in Directory.GetFiles(pulled.Folder))
                if (!FileSystemEntries.IsInside(f, cache)) throw new InvalidOperationException($"{f} lies outside the cache");
            using var model = ModelLoader.LoadFolder(pulled.Folder);
        }, new[] { typeof(HubException), typeof(CheckpointException) }, _output, share: 0.03);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > 0, stats.ToString());
    }

    // ---------------------------------------------------------------- the model API's answers

    [Fact]
    public void ModelApiAnswers()
    {
        const string valid = """{"_id":"x","id":"test-org/tiny","sha":"0123456789abcdef0123456789abcdef01234567","siblings":[{"rfilename":"config.json","size":123},{"rfilename":"model.safetensors"}]}""";
        var repo = RepoId.Parse("test-org/tiny");
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            string text = r.Next(6) switch
            {
                0 => Mutations.RandomJsonValue(r),
                1 => Encoding.UTF8.GetString(Mutations.RandomBytes(r, 200)),
                _ => Mutations.MutateJson(valid, r),
            };
            return new FuzzCase<string>(text, $"seed {seed}: {text}", "api/models/test-org/tiny");
        });
        var stats = FuzzHarness.Run("model API answers", gen, text =>
        {
            var revision = HubClient.ParseRevision(Encoding.UTF8.GetBytes(text), repo, "api/models/test-org/tiny");
            if (revision.Files.Any(f => f.Size < 0)) throw new InvalidOperationException("a negative size was accepted");
        }, new[] { typeof(HubException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    // ---------------------------------------------------------------- numeric flags of every verb

    static readonly (string[] Verb, string Option)[] NumericOptions =
    {
        (new[] { "eval", "--model", "m", "--task", "ioi" }, "--prompts"), (new[] { "eval", "--model", "m", "--task", "ioi" }, "--batch-size"),
        (new[] { "report", "--model", "m", "--task", "ioi" }, "--prompts"), (new[] { "dataset", "--task", "ioi", "--out", "x" }, "--prompts"),
        (new[] { "discover", "--model", "m", "--task", "t", "-a", "acdc" }, "--threads"), (new[] { "discover", "--model", "m", "--task", "t", "-a", "acdc" }, "--epochs"),
        (new[] { "discover", "--model", "m", "--task", "t", "-a", "acdc" }, "--top"), (new[] { "hooks", "--model", "m" }, "--batch"),
        (new[] { "hooks", "--model", "m" }, "--seq"), (new[] { "run", "--model", "m", "--tokens", "1" }, "--top"),
        (new[] { "bench", "patching" }, "--batch"), (new[] { "bench", "patching" }, "--repeat"), (new[] { "bench", "patching" }, "--seq"),
        (new[] { "train-toy-ioi" }, "--steps"), (new[] { "train-toy-ioi" }, "--threads"),
    };

    static readonly string[] Values = { "0", "1", "-1", "2", "100000", "100001", "1000000000", "2147483647", "2147483648", "-2147483648", "1e3", "0x10", "", " 5", "five", "1,000", "\u0000" };

    [Fact]
    public void NumericFlagsOfEveryVerb()
    {
        var root = WorkbookCli.Build();
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            var (verb, option) = NumericOptions[r.Next(NumericOptions.Length)];
            string value = r.Next(3) == 0 ? r.Next(int.MinValue, int.MaxValue).ToString() : Values[r.Next(Values.Length)];
            return new FuzzCase<string[]>(verb.Append(option).Append(value).ToArray(), $"seed {seed}: {string.Join(' ', verb)} {option} '{value}'", option, "Argument", "Cannot parse", "Required");
        });
        var stats = FuzzHarness.Run("numeric flags", gen, args =>
        {
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0) throw new ArgumentException(string.Join(" | ", parsed.Errors.Select(e => e.Message)));
            // Accepted: the value must lie within the limits the verb declares.
            int value = int.Parse(args[^1]);
            string option = args[^2];
            int max = option switch
            {
                "--threads" => Environment.ProcessorCount, "--seq" => args[0] == "bench" ? 1024 : 1 << 20, "--steps" => Workbook.Cli.Commands.OptionLimits.MaxSteps,
                "--top" => Workbook.Cli.Commands.OptionLimits.MaxTop, "--repeat" => Workbook.Cli.Commands.OptionLimits.MaxRepeat, "--epochs" => Workbook.Cli.Commands.OptionLimits.MaxEpochs,
                _ => 100_000,
            };
            int min = option is "--epochs" || (option == "--top" && args[0] == "discover") ? 0 : 1;
            if (value < min || value > max) throw new InvalidOperationException($"{option} {value} was accepted");
        }, new[] { typeof(ArgumentException) }, _output);
        Assert.True(stats.Accepted > 0 && stats.Rejected.Values.Sum() > stats.Cases / 4, stats.ToString());
    }

    // ---------------------------------------------------------------- long words for BPE

    [Fact]
    public void LongWordsForTheBpeMergeLoop()
    {
        var tokenizer = HuggingFaceTokenizer.FromJson(HuggingFaceTokenizerTests.Gpt2FromTiktokenJson.Value, "gpt2-from-tiktoken");
        var gen = Gen.Int.Select(seed =>
        {
            var r = new Random(seed);
            int length = r.Next(4) == 0 ? r.Next(10_000, 70_000) : r.Next(1, 3000);
            string[] alphabet = r.Next(3) switch { 0 => new[] { "a", "b" }, 1 => "etaoinshrdlu".Select(c => c.ToString()).ToArray(), _ => new[] { "a", "é", "漢", "😀", "1", " ", "." } };
            var sb = new StringBuilder();
            while (sb.Length < length) sb.Append(alphabet[r.Next(alphabet.Length)]);
            return new FuzzCase<(string Text, int Max)>((sb.ToString(), r.Next(3) == 0 ? r.Next(1, 2048) : int.MaxValue), $"seed {seed}: {length} characters from '{string.Concat(alphabet)}'", "gpt2-from-tiktoken", "allowed");
        });
        var stats = FuzzHarness.Run("BPE long words", gen, c =>
        {
            var ids = tokenizer.Encode(c.Text, c.Max);
            if (tokenizer.Decode(ids) != c.Text) throw new InvalidOperationException("decode does not invert encode");
        }, new[] { typeof(ArgumentException) }, _output, share: 0.03);
        Assert.True(stats.Accepted > 0, stats.ToString());
    }

    // ---------------------------------------------------------------- text echoed to the terminal

    [Fact]
    public void EchoedTextHoldsNoControlCharacters()
    {
        var gen = Gen.String[Gen.Char[(char)0, (char)0x3000], 0, 60].Select(s => new FuzzCase<string>(s, $"'{ControlCharacters.Escape(s)}'"));
        var stats = FuzzHarness.Run("echoed text", gen, text =>
        {
            string escaped = ControlCharacters.Escape(text);
            if (escaped.Any(ControlCharacters.NeedsEscape)) throw new InvalidOperationException("a control character survived");
            if (!text.Any(ControlCharacters.NeedsEscape) && escaped != text) throw new InvalidOperationException("plain text was changed");
            string printable = CliErrors.Printable(text);
            if (printable.Any(ControlCharacters.NeedsEscape)) throw new InvalidOperationException("a control character reached an error line");
        }, Array.Empty<Type>(), _output);
        Assert.Equal(stats.Cases, stats.Accepted);
    }
}
