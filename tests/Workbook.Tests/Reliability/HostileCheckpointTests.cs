using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Workbook.Checkpoints;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Reliability;

/// <summary>
/// Small torch.save files that asked for gigabytes before any check (issue 16, item 2): a pickle that floods the
/// stack with DUP opcodes, padding after the pickle's STOP, an oversized or unknown byteorder record, and tensors that
/// view a tiny storage with stride 0 and huge sizes. Each is refused with a message naming the problem; the
/// memory-bound ones run in a child process under a managed-heap cap with its peak resident memory measured.
/// </summary>
public sealed class HostileCheckpointTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-hostile-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static CheckpointException Refused(byte[] pickle) => Assert.Throws<CheckpointException>(() => RestrictedUnpickler.Load(pickle, "test.pth"));

    static byte[] Pickle(Action<MemoryStream> body)
    {
        var ms = new MemoryStream();
        ms.Write(new byte[] { 0x80, 2 });
        body(ms);
        return ms.ToArray();
    }

    static void Repeat(Stream s, byte[] unit, long times)
    {
        var block = Enumerable.Repeat(unit, 4096).SelectMany(b => b).ToArray();
        for (long done = 0; done < times; done += 4096) s.Write(block, 0, (int)Math.Min(4096, times - done) * unit.Length);
    }

    // ---------------------------------------------------------------- the unpickler's bounds, in process

    [Fact]
    public void DupFloodStopsAtTheStackBound()
    {
        var e = Refused(Pickle(s => { s.WriteByte((byte)'}'); Repeat(s, "2"u8.ToArray(), RestrictedUnpickler.MaxStack + 10); s.WriteByte((byte)'.'); }));
        Assert.Contains("stack grows past", e.Message);
        Assert.StartsWith("test.pth: ", e.Message);
    }

    [Fact]
    public void MemoFloodStopsAtTheMemoBound()
    {
        var e = Refused(Pickle(s => { s.WriteByte((byte)'}'); Repeat(s, new byte[] { 0x94 }, RestrictedUnpickler.MaxMemo + 10); s.WriteByte((byte)'.'); }));
        Assert.Contains("memo entries", e.Message);
    }

    [Fact]
    public void ListGrowingWithoutBoundStopsAtTheObjectBound()
    {
        // ] then (] a) repeated: each pair creates a list and appends it; the stack stays at one entry.
        var e = Refused(Pickle(s => { s.WriteByte((byte)']'); Repeat(s, "]a"u8.ToArray(), RestrictedUnpickler.MaxObjects); s.WriteByte((byte)'.'); }));
        Assert.Contains("objects", e.Message);
    }

    [Fact]
    public void BytesAfterStopAreRefused()
    {
        var valid = new TorchSaveWriter().Add("w", ones(2)).Pickle();
        RestrictedUnpickler.Load(valid, "test.pth"); // the pickle itself is fine
        var e = Refused(valid.Concat(new byte[100]).ToArray());
        Assert.Contains("100 bytes follow the pickle's STOP opcode", e.Message);
    }

    // ---------------------------------------------------------------- byteorder records

    string WriteWithByteorder(string name, byte[] byteorder)
    {
        var writer = new TorchSaveWriter().Add("w", ones(2));
        string path = Path.Combine(_dir, name);
        TorchSaveWriter.WriteZip(path, s => s.Write(writer.Pickle()), writer.Storages, s => s.Write(byteorder));
        return path;
    }

    [Fact]
    public void UnknownAndBigEndianByteordersHaveClearMessages()
    {
        var unknown = Assert.Throws<CheckpointException>(() => TorchCheckpointFile.Open(WriteWithByteorder("odd.pth", "middle\x1b[2J"u8.ToArray())));
        Assert.Contains("unknown byteorder record 'middle\\x1b[2J'", unknown.Message);
        var big = Assert.Throws<CheckpointException>(() => TorchCheckpointFile.Open(WriteWithByteorder("big.pth", "big"u8.ToArray())));
        Assert.Contains("stored big-endian", big.Message);
        using var little = TorchCheckpointFile.Open(WriteWithByteorder("little.pth", "little\n"u8.ToArray()));
        Assert.Single(little.Entries);
    }

    // ---------------------------------------------------------------- views of storages

    /// <summary>A file with one 6-element float storage and one view of it.</summary>
    string WriteView(long offset, long[] shape, long[] strides)
    {
        string path = Path.Combine(_dir, $"view-{Guid.NewGuid():N}.pth");
        new TorchSaveWriter().Add("base", arange(6, dtype: ScalarType.Float32)).AddView("view", "base", offset, shape, strides).Write(path);
        return path;
    }

    [Theory]
    [InlineData(0, new long[] { 1000000, 1000000 }, new long[] { 0, 0 }, "repeats stored values")]           // stride 0, huge
    [InlineData(0, new long[] { 4, 3 }, new long[] { 0, 1 }, "repeats stored values")]                      // stride 0 over a real dimension
    [InlineData(0, new long[] { 6, 2 }, new long[] { 1, 6 }, "reaches element 11")]                         // past the end
    [InlineData(0, new long[] { 4, 2 }, new long[] { 1, 1 }, "repeats stored values")]                      // overlapping rows: 8 elements from 6
    [InlineData(7, new long[] { 1 }, new long[] { 1 }, "starts at element 7")]
    [InlineData(0, new long[] { 4611686018427387904, 4 }, new long[] { 4611686018427387904, 1 }, "absurd sizes or strides")]
    [InlineData(0, new long[] { 0, 1099511627776, 2147483647 }, new long[] { 5, 5, 0 }, "absurd sizes or strides")]   // empty, but libtorch's strides overflow (found by the fuzzer)
    public void ViewsThatLeaveOrRepeatTheirStorageAreRefused(long offset, long[] shape, long[] strides, string message)
    {
        var e = Assert.Throws<CheckpointException>(() => TorchCheckpointFile.Open(WriteView(offset, shape, strides)));
        Assert.Contains(message, e.Message);
        Assert.Contains("'view'", e.Message);
    }

    [Theory]
    [InlineData(0, new long[] { 3, 2 }, new long[] { 1, 3 }, new float[] { 0, 3, 1, 4, 2, 5 })]          // a transpose (as torch.save writes W.T)
    [InlineData(2, new long[] { 1, 4 }, new long[] { 0, 1 }, new float[] { 2, 3, 4, 5 })]                 // expand of a size-1 dimension: stride 0 there is harmless
    [InlineData(1, new long[] { 0, 4611686018427387904 }, new long[] { 7, 9 }, new float[0])]             // no elements: the other sizes do not matter
    [InlineData(0, new long[] { 2, 3 }, new long[] { 3, 1 }, new float[] { 0, 1, 2, 3, 4, 5 })]
    public void ViewsInsideTheirStorageAreRead(long offset, long[] shape, long[] strides, float[] expected)
    {
        using var file = TorchCheckpointFile.Open(WriteView(offset, shape, strides));
        using var t = file.Read("view");
        Assert.Equal(shape, t.shape);
        Assert.Equal(expected, t.NumberOfElements == 0 ? Array.Empty<float>() : t.contiguous().data<float>().ToArray());
    }

    [Fact]
    public void TensorsSharingAStorageCountItOnceAgainstTheConfig()
    {
        // 3 views of one 6-element storage: 6 values stored however many tensors claim them.
        string path = Path.Combine(_dir, "shared.pth");
        new TorchSaveWriter().Add("a", arange(6, dtype: ScalarType.Float32))
            .AddView("b", "a", 0, new long[] { 2, 3 }, new long[] { 3, 1 }).AddView("c", "a", 0, new long[] { 3, 2 }, new long[] { 1, 3 }).Write(path);
        using var file = TorchCheckpointFile.Open(path);
        Assert.Equal(6, file.StoredValues);
    }

    [Fact]
    public void ManyTensorsViewingOneStorageCannotPassForALargerModel()
    {
        // tiny-gpt2's names and shapes, every tensor a plain (non-repeating) view of one storage of V·D values: each view
        // is legal, but together they claim ~6 times the values the file holds, so the config cannot be these weights.
        using var fixture = SafetensorsFile.Open(TestFiles.Fixture("tiny-gpt2/model.safetensors"));
        string folder = Path.Combine(_dir, "shared-storage");
        Directory.CreateDirectory(folder);
        File.Copy(TestFiles.Fixture("tiny-gpt2/config.json"), Path.Combine(folder, "config.json"));
        var names = fixture.Tensors.Keys.Where(n => n != "transformer.wte.weight").ToList();
        var writer = new TorchSaveWriter().Add("transformer.wte.weight", fixture.Read("transformer.wte.weight"));
        foreach (var n in names)
        {
            var shape = fixture.Tensors[n].Shape;
            var strides = new long[shape.Length];
            for (int i = shape.Length - 1, acc = 1; i >= 0; acc *= (int)shape[i], i--) strides[i] = acc;
            writer.AddView(n, "transformer.wte.weight", 0, shape, strides);
        }
        writer.Write(Path.Combine(folder, "pytorch_model.bin"));
        var e = Assert.Throws<CheckpointException>(() => ModelLoader.LoadFolder(folder));
        Assert.Contains("holds 32,768", e.Message);
    }

    // ---------------------------------------------------------------- whole files, in a child process under a memory cap

    const long ManagedHeapCap = 512L << 20;
    const long PeakRssLimit = 1L << 30; // the CLI with libtorch loaded sits near 250-350 MB

    /// <summary>A checkpoint folder: <paramref name="config"/> beside a pytorch_model.bin written by <paramref name="write"/>.</summary>
    string Folder(string name, string config, Action<string> write)
    {
        string folder = Path.Combine(_dir, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        write(Path.Combine(folder, "pytorch_model.bin"));
        return folder;
    }

    static string TinyConfig => File.ReadAllText(TestFiles.Fixture("tiny-gpt2/config.json"));

    /// <summary>Runs <c>workbook hooks</c> on the folder under the cap; returns stderr after checking the bound and the one-line error.</summary>
    static string LoadCapped(string folder, string mustMention)
    {
        var r = CliProcess.RunMeasured(new Dictionary<string, string>(), TimeSpan.FromMinutes(3), ManagedHeapCap, "hooks", "--model", folder);
        Assert.True(r.ExitCode == 1, $"exit {r.ExitCode}; the file must be refused. stderr: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one error line, got:\n{r.Err}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mustMention, lines[0]);
        Assert.DoesNotContain("OutOfMemory", lines[0]);
        if (r.PeakRssBytes > 0) Assert.True(r.PeakRssBytes < PeakRssLimit, $"peak resident memory {r.PeakRssBytes >> 20} MiB (limit {PeakRssLimit >> 20} MiB)");
        return lines[0];
    }

    [Fact]
    public void DeflatedDupFloodIsRefusedUnderAMemoryCap()
    {
        // 40 M DUP opcodes: about 40 KB once deflated; unbounded they became a 40 M-entry stack and a 40 MB pickle copy.
        string folder = Folder("dup-flood", TinyConfig, path => TorchSaveWriter.WriteZip(path,
            s => { s.Write(new byte[] { 0x80, 2, (byte)'}' }); Repeat(s, "2"u8.ToArray(), 40_000_000); s.WriteByte((byte)'.'); },
            Array.Empty<(string, byte[])>(), s => s.Write("little"u8), compression: CompressionLevel.SmallestSize));
        Assert.True(new FileInfo(Path.Combine(folder, "pytorch_model.bin")).Length < 1_000_000);
        LoadCapped(folder, "pickle stack grows past");
    }

    [Fact]
    public void DeflatedPaddingAfterStopIsRefusedUnderAMemoryCap()
    {
        var writer = new TorchSaveWriter().Add("wte.weight", ones(2));
        string folder = Folder("padding", TinyConfig, path => TorchSaveWriter.WriteZip(path,
            s => { s.Write(writer.Pickle()); Repeat(s, new byte[] { 0 }, 200_000_000); }, writer.Storages, s => s.Write("little"u8),
            compression: CompressionLevel.SmallestSize));
        LoadCapped(folder, "the pickle (data.pkl) is");
    }

    [Fact]
    public void DeflatedHugeByteorderRecordIsRefusedUnderAMemoryCap()
    {
        var writer = new TorchSaveWriter().Add("wte.weight", ones(2));
        string folder = Folder("byteorder", TinyConfig, path => TorchSaveWriter.WriteZip(path,
            s => s.Write(writer.Pickle()), writer.Storages, s => Repeat(s, "x"u8.ToArray(), 200_000_000), compression: CompressionLevel.SmallestSize));
        Assert.True(LoadCapped(folder, "unknown byteorder record").Length < 300, "the message must not quote the record whole");
    }

    [Fact]
    public void StrideZeroViewsOfATinyStorageAreRefusedUnderAMemoryCap()
    {
        // A GPT-2 config of 78 M parameters, every tensor a stride-0 view of one stored float: a 5 KB file that loaded ~670 MB.
        const int D = 1024, V = 50257, P = 1024, L = 2;
        var config = JsonNode.Parse(TinyConfig)!.AsObject();
        config["n_embd"] = D;
        config["n_head"] = 16;
        config["n_layer"] = L;
        config["vocab_size"] = V;
        config["n_positions"] = P;
        var shapes = new List<(string Name, long[] Shape)> { ("wte.weight", new long[] { V, D }), ("wpe.weight", new long[] { P, D }) };
        for (int l = 0; l < L; l++)
            shapes.AddRange(new (string, long[])[]
            {
                ($"h.{l}.ln_1.weight", new long[] { D }), ($"h.{l}.ln_1.bias", new long[] { D }),
                ($"h.{l}.attn.c_attn.weight", new long[] { D, 3 * D }), ($"h.{l}.attn.c_attn.bias", new long[] { 3 * D }),
                ($"h.{l}.attn.c_proj.weight", new long[] { D, D }), ($"h.{l}.attn.c_proj.bias", new long[] { D }),
                ($"h.{l}.ln_2.weight", new long[] { D }), ($"h.{l}.ln_2.bias", new long[] { D }),
                ($"h.{l}.mlp.c_fc.weight", new long[] { D, 4 * D }), ($"h.{l}.mlp.c_fc.bias", new long[] { 4 * D }),
                ($"h.{l}.mlp.c_proj.weight", new long[] { 4 * D, D }), ($"h.{l}.mlp.c_proj.bias", new long[] { D }),
            });
        shapes.Add(("ln_f.weight", new long[] { D }));
        shapes.Add(("ln_f.bias", new long[] { D }));
        string folder = Folder("stride0", config.ToJsonString(), path =>
        {
            // The first LayerNorm weight holds D real values; every other tensor views that storage with all strides 0.
            var writer = new TorchSaveWriter().Add(shapes[2].Name, ones(D));
            foreach (var (name, shape) in shapes.Where(s => s.Name != shapes[2].Name)) writer.AddView(name, shapes[2].Name, 0, shape, new long[shape.Length]);
            writer.Write(path);
        });
        Assert.True(new FileInfo(Path.Combine(folder, "pytorch_model.bin")).Length < 40_000);
        LoadCapped(folder, "repeats stored values");
    }
}
