using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Tests.Support;

/// <summary>
/// Writes a PyTorch state dict the way <c>torch.save</c> (protocol 2, zip format) does, from the file-format
/// description alone, independently of the workbook's reader: <c>archive/data.pkl</c> pickles an
/// <c>OrderedDict</c> of <c>torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())</c>
/// calls, each storage a raw little-endian file <c>archive/data/{key}</c>. Globals are memoized and reused
/// with BINGET as CPython's pickler does, and the dict's <c>_metadata</c> is set with BUILD.
/// </summary>
public sealed class TorchSaveWriter
{
    sealed record Storage(string Key, string Type, byte[] Data, long ElementCount);
    sealed record Item(string Name, Storage Storage, long Offset, long[] Shape, long[] Strides);

    readonly List<Storage> _storages = new();
    readonly List<Item> _items = new();
    readonly Dictionary<string, Item> _byName = new();

    static (string Type, int Size) StorageType(ScalarType t) => t switch
    {
        ScalarType.Float32 => ("FloatStorage", 4), ScalarType.Float16 => ("HalfStorage", 2), ScalarType.BFloat16 => ("BFloat16Storage", 2),
        ScalarType.Float64 => ("DoubleStorage", 8), ScalarType.Int64 => ("LongStorage", 8), ScalarType.Bool => ("BoolStorage", 1),
        _ => throw new NotSupportedException(t.ToString()),
    };

    static long[] RowMajorStrides(long[] shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    /// <summary>A tensor with a storage of its own.</summary>
    public TorchSaveWriter Add(string name, Tensor value)
    {
        // The temporaries are freed here, not by the finalizer thread: a temporary that only a native call still uses
        // can be finalized during that call (a use-after-free that crashed the fuzzers' test host).
        using (NewDisposeScope())
        {
            var c = value.detach().cpu().contiguous();
            var (type, _) = StorageType(c.dtype);
            var data = c.NumberOfElements == 0 ? Array.Empty<byte>() : c.view(-1).bytes.ToArray();
            var storage = new Storage(_storages.Count.ToString(), type, data, c.NumberOfElements);
            _storages.Add(storage);
            var item = new Item(name, storage, 0, c.shape, RowMajorStrides(c.shape));
            _items.Add(item);
            _byName[name] = item;
        }
        GC.KeepAlive(value); // the caller's tensor may be a temporary too (Add("w", arange(24)))
        return this;
    }

    /// <summary>A view of another tensor's storage (as torch.save writes tied or transposed weights).</summary>
    public TorchSaveWriter AddView(string name, string storageOf, long offset, long[] shape, long[] strides)
    {
        var item = new Item(name, _byName[storageOf].Storage, offset, shape, strides);
        _items.Add(item);
        _byName[name] = item;
        return this;
    }

    public void Write(string path)
    {
        var p = new PickleBuilder();
        p.Proto(2);
        p.Global("collections", "OrderedDict");
        p.EmptyTuple().Reduce().Put();
        p.Mark();
        foreach (var item in _items)
        {
            p.Unicode(item.Name).Put();
            p.Global("torch._utils", "_rebuild_tensor_v2");
            p.Mark();
            p.Mark().Unicode("storage").Global("torch", item.Storage.Type).Unicode(item.Storage.Key).Unicode("cpu").Int(item.Storage.ElementCount).Tuple().BinPersId();
            p.Int(item.Offset);
            p.IntTuple(item.Shape);
            p.IntTuple(item.Strides);
            p.False();
            p.Global("collections", "OrderedDict").EmptyTuple().Reduce();
            p.Tuple().Reduce().Put();
        }
        p.SetItems();
        // state dict metadata: {'_metadata': OrderedDict({'': {'version': 1}})}
        p.EmptyDict().Unicode("_metadata").Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Unicode("").EmptyDict().Unicode("version").Int(1).SetItem().SetItem().SetItem().Build();
        p.Stop();
        WriteZip(path, p.ToArray(), _storages.Select(s => (s.Key, s.Data)));
    }

    /// <summary>A torch.save-style zip holding the given pickle and storages.</summary>
    public static void WriteZip(string path, byte[] pickle, IEnumerable<(string Key, byte[] Data)> storages, string archive = "archive") =>
        WriteZip(path, s => s.Write(pickle), storages, s => s.Write(Encoding.ASCII.GetBytes("little")), archive, CompressionLevel.NoCompression);

    /// <summary>
    /// A torch.save-style zip whose pickle and byteorder record are streamed by the callers, deflated when asked: a few
    /// kilobytes of deflate can stand for hundreds of megabytes (the shape of a hostile file).
    /// </summary>
    public static void WriteZip(string path, Action<Stream> pickle, IEnumerable<(string Key, byte[] Data)> storages, Action<Stream> byteorder,
        string archive = "archive", CompressionLevel compression = CompressionLevel.NoCompression)
    {
        if (File.Exists(path)) File.Delete(path);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Entry(string name, Action<Stream> write)
        {
            var e = zip.CreateEntry($"{archive}/{name}", compression);
            using var s = e.Open();
            write(s);
        }
        Entry("data.pkl", pickle);
        Entry("byteorder", byteorder);
        foreach (var (key, data) in storages) Entry($"data/{key}", s => s.Write(data));
        Entry("version", s => s.Write(Encoding.ASCII.GetBytes("3\n")));
    }

    /// <summary>The pickle this writer would write (for tests that edit it).</summary>
    public byte[] Pickle()
    {
        string temp = Path.Combine(Path.GetTempPath(), $"wb-pickle-{Guid.NewGuid():N}.pth");
        try
        {
            Write(temp);
            using var zip = ZipFile.OpenRead(temp);
            using var s = zip.GetEntry("archive/data.pkl")!.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            return ms.ToArray();
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>The storages this writer would write, by key.</summary>
    public IEnumerable<(string Key, byte[] Data)> Storages => _storages.Select(s => (s.Key, s.Data));
}

/// <summary>Emits pickle opcodes (protocol 2), memoizing globals the way CPython does.</summary>
public sealed class PickleBuilder
{
    readonly MemoryStream _out = new();
    readonly Dictionary<string, int> _globals = new();
    int _memo;

    void Op(byte b) => _out.WriteByte(b);
    void Bytes(byte[] b) => _out.Write(b);

    public PickleBuilder Proto(byte v) { Op(0x80); Op(v); return this; }
    public PickleBuilder Mark() { Op((byte)'('); return this; }
    public PickleBuilder EmptyTuple() { Op((byte)')'); return this; }
    public PickleBuilder EmptyDict() { Op((byte)'}'); return this; }
    public PickleBuilder Tuple() { Op((byte)'t'); return this; }
    public PickleBuilder Reduce() { Op((byte)'R'); return this; }
    public PickleBuilder Build() { Op((byte)'b'); return this; }
    public PickleBuilder SetItem() { Op((byte)'s'); return this; }
    public PickleBuilder SetItems() { Op((byte)'u'); return this; }
    public PickleBuilder BinPersId() { Op((byte)'Q'); return this; }
    public PickleBuilder False() { Op(0x89); return this; }
    public PickleBuilder Stop() { Op((byte)'.'); return this; }

    public PickleBuilder Put()
    {
        if (_memo < 256) { Op((byte)'q'); Op((byte)_memo); }
        else { Op((byte)'r'); Bytes(BitConverter.GetBytes(_memo)); }
        _memo++;
        return this;
    }

    public PickleBuilder Get(int index)
    {
        if (index < 256) { Op((byte)'h'); Op((byte)index); }
        else { Op((byte)'j'); Bytes(BitConverter.GetBytes(index)); }
        return this;
    }

    /// <summary>GLOBAL module\nname\n the first time, then BINGET of its memo slot.</summary>
    public PickleBuilder Global(string module, string name)
    {
        string key = module + "." + name;
        if (_globals.TryGetValue(key, out int slot)) return Get(slot);
        Op((byte)'c');
        Bytes(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        _globals[key] = _memo;
        return Put();
    }

    public PickleBuilder Unicode(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Op((byte)'X');
        Bytes(BitConverter.GetBytes(b.Length));
        Bytes(b);
        return this;
    }

    public PickleBuilder Int(long v)
    {
        if (v is >= 0 and < 256) { Op((byte)'K'); Op((byte)v); }
        else if (v is >= 0 and < 65536) { Op((byte)'M'); Bytes(BitConverter.GetBytes((ushort)v)); }
        else if (v is >= int.MinValue and <= int.MaxValue) { Op((byte)'J'); Bytes(BitConverter.GetBytes((int)v)); }
        else
        {
            Op(0x8a); // LONG1
            var b = BitConverter.GetBytes(v);
            Op(8);
            Bytes(b);
        }
        return this;
    }

    /// <summary>A tuple of ints: TUPLE1..3 for short ones, MARK ... TUPLE otherwise (as CPython does).</summary>
    public PickleBuilder IntTuple(long[] values)
    {
        if (values.Length == 0) return EmptyTuple();
        if (values.Length <= 3)
        {
            foreach (var v in values) Int(v);
            Op((byte)(0x84 + values.Length));
            return this;
        }
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    public byte[] ToArray() => _out.ToArray();
}
