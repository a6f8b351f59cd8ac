using System.Buffers.Binary;
using System.Text;

namespace Workbook.Checkpoints;

/// <summary>
/// A Python pickle reader that only rebuilds PyTorch state dicts. Any global other than the few that rebuild
/// tensors and ordered dicts is refused before it is used, so a hostile checkpoint cannot run code: there is
/// no code to run, only data structures. Supports the opcodes of protocols 2 to 5 that <c>torch.save</c> emits.
/// The work and memory a pickle can ask for are bounded (opcodes, stack depth, memo entries, objects created), so a
/// small hostile pickle (a flood of DUP opcodes, say) fails with a message instead of growing the process by gigabytes.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>A pickled <c>module.name</c> reference (only allowed ones are ever created).</summary>
    internal sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    /// <summary>A tensor's storage, by its key in the archive's <c>data/</c> folder.</summary>
    internal sealed record StorageRef(string Key, string DType, int ElementSize, long ElementCount);

    /// <summary>The arguments of <c>torch._utils._rebuild_tensor_v2</c>: a strided view of a storage.</summary>
    internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Shape, long[] Strides);

    /// <summary>An ordered dict (plain dicts keep insertion order too).</summary>
    internal sealed class PickleDict
    {
        public List<KeyValuePair<object, object?>> Items { get; } = new();
    }

    sealed class Mark
    {
        public static readonly Mark Instance = new();
    }

    /// <summary>Storage classes by name → (safetensors dtype name, element size).</summary>
    internal static readonly IReadOnlyDictionary<string, (string DType, int Size)> StorageTypes = new Dictionary<string, (string, int)>(StringComparer.Ordinal)
    {
        ["FloatStorage"] = ("F32", 4), ["HalfStorage"] = ("F16", 2), ["BFloat16Storage"] = ("BF16", 2),
        ["DoubleStorage"] = ("F64", 8), ["LongStorage"] = ("I64", 8), ["IntStorage"] = ("I32", 4),
        ["ShortStorage"] = ("I16", 2), ["CharStorage"] = ("I8", 1), ["ByteStorage"] = ("U8", 1), ["BoolStorage"] = ("BOOL", 1),
    };

    static readonly HashSet<string> AllowedGlobals = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
    };

    static bool IsAllowed(Global g) =>
        AllowedGlobals.Contains(g.ToString()) || (g.Module == "torch" && StorageTypes.ContainsKey(g.Name));

    /// <summary>
    /// Limits far above what a state dict needs (torch.save pickles a few objects per tensor and pushes at most 1,000
    /// dict items before a SETITEMS), far below what would exhaust memory (each counted object is a few dozen bytes).
    /// </summary>
    internal const int MaxStack = 100_000, MaxMemo = 2_000_000;
    internal const long MaxOpcodes = 20_000_000, MaxObjects = 4_000_000;

    readonly byte[] _data;
    readonly string _source;
    int _pos;
    long _opcodes, _objects;
    readonly List<object?> _stack = new();
    readonly Dictionary<long, object?> _memo = new();

    RestrictedUnpickler(byte[] data, string source)
    {
        _data = data;
        _source = source;
    }

    /// <summary>Unpickles <paramref name="data"/>; <paramref name="source"/> names the file in messages.</summary>
    public static object? Load(byte[] data, string source) => new RestrictedUnpickler(data, source).Run();

    CheckpointException Error(string message) => new($"{_source}: {message}");

    object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("pickle data ends without a STOP opcode (truncated file?).");
            if (++_opcodes > MaxOpcodes) throw Error($"the pickle runs more than {MaxOpcodes:N0} opcodes; a state dict needs far fewer (corrupt or hostile file).");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: _pos++; break; // PROTO n
                case 0x95: Take(8); break; // FRAME length (frames are just a read-ahead hint)
                case (byte)'.': // STOP
                    if (_stack.Count != 1) throw Error($"pickle ends with {_stack.Count} objects on the stack, expected 1.");
                    if (_pos != _data.Length)
                        throw Error($"{_data.Length - _pos:N0} bytes follow the pickle's STOP opcode; a torch.save pickle ends there (padded or corrupt file?).");
                    return _stack[0];
                case (byte)'(': Push(Mark.Instance); break;
                case (byte)'}': Push(new PickleDict()); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'d': { var items = PopMark(); var d = new PickleDict(); AddPairs(d, items); Push(d); break; }
                case (byte)'l': Push(PopMark()); break;
                case (byte)'t': Push(PopMark().ToArray()); break;
                case 0x85: Push(new[] { Pop() }); break; // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'q': Memoize(Take(1)[0]); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break; // LONG_BINPUT
                case (byte)'p': Memoize(MemoKey(ReadLine())); break; // PUT
                case 0x94: Memoize(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(Recall(Take(1)[0])); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'g': Push(Recall(MemoKey(ReadLine()))); break; // GET
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)Take(1)[0]); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a: Push(ReadLong(Take(1)[0])); break; // LONG1
                case (byte)'I': Push(ParseIntLine(ReadLine())); break; // INT (protocol 0; "01"/"00" are booleans)
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'X': Push(Encoding.UTF8.GetString(Take(CheckedLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break;
                case 0x8c: Push(Encoding.UTF8.GetString(Take(Take(1)[0]))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Encoding.UTF8.GetString(Take(CheckedLength(BinaryPrimitives.ReadUInt64LittleEndian(Take(8)))))); break;
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(CheckedLength((ulong)BinaryPrimitives.ReadInt32LittleEndian(Take(4)))))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Take(1)[0]))); break; // SHORT_BINSTRING
                case (byte)'B': Push(Take(CheckedLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break; // SHORT_BINBYTES
                case (byte)'c': Push(MakeGlobal(ReadLine(), ReadLine())); break; // GLOBAL
                case 0x93: { var name = Pop(); var module = Pop(); Push(MakeGlobal(AsString(module, "module name"), AsString(name, "global name"))); break; } // STACK_GLOBAL
                case (byte)'R': { var args = Pop(); var func = Pop(); Push(Reduce(func, args)); break; } // REDUCE
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; } // BUILD
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'s': { var v = Pop(); var k = Pop(); Count(1); AsDict(Peek()).Items.Add(new(KeyOf(k), v)); break; } // SETITEM
                case (byte)'u': { var items = PopMark(); AddPairs(AsDict(Peek()), items); break; } // SETITEMS
                case (byte)'a': { var v = Pop(); Count(1); AsList(Peek()).Add(v); break; } // APPEND
                case (byte)'e': { var items = PopMark(); Count(items.Count); AsList(Peek()).AddRange(items); break; } // APPENDS
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP
                default:
                    throw Error($"unsupported pickle opcode 0x{op:x2} at byte {_pos - 1} (not something torch.save writes for a state dict).");
            }
        }
    }

    ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _pos + n > _data.Length) throw Error($"pickle data ends inside an opcode argument at byte {_pos}.");
        var span = new ReadOnlySpan<byte>(_data, _pos, n);
        _pos += n;
        return span;
    }

    int CheckedLength(ulong n) => n <= (ulong)(_data.Length - _pos) ? (int)n : throw Error($"a string of {n} bytes runs past the end of the pickle data.");

    string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Error("pickle data ends inside a text argument.");
        string s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    long MemoKey(string s) => long.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long v)
        ? v
        : throw Error($"bad memo key '{Util.ControlCharacters.Quote(s, 40)}' (corrupt data).");

    object ParseIntLine(string s) => s switch
    {
        "01" => true,
        "00" => false,
        _ => long.TryParse(s, out long v) ? v : throw Error($"bad INT argument '{Util.ControlCharacters.Quote(s, 40)}'."),
    };

    object ReadLong(int n)
    {
        var bytes = Take(n);
        if (n > 8) throw Error($"an integer of {n} bytes is too large.");
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        if (n > 0 && n < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // two's complement
        return v;
    }

    void Push(object? o)
    {
        if (_stack.Count >= MaxStack) throw Error($"the pickle stack grows past {MaxStack:N0} entries; a state dict needs far fewer (corrupt or hostile file).");
        Count(1);
        _stack.Add(o);
    }

    /// <summary>Counts objects and container elements created, against <see cref="MaxObjects"/>.</summary>
    void Count(long n)
    {
        _objects += n;
        if (_objects > MaxObjects) throw Error($"the pickle builds more than {MaxObjects:N0} objects; a state dict needs far fewer (corrupt or hostile file).");
    }

    void Memoize(long key)
    {
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(key))
            throw Error($"the pickle stores more than {MaxMemo:N0} memo entries; a state dict needs far fewer (corrupt or hostile file).");
        _memo[key] = Peek();
    }

    object? Pop()
    {
        if (_stack.Count == 0) throw Error("pickle stack underflow (corrupt data).");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        if (o is Mark) throw Error("unexpected MARK on the pickle stack (corrupt data).");
        return o;
    }

    object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Error("pickle stack underflow (corrupt data).");

    List<object?> PopMark()
    {
        int i = _stack.FindLastIndex(o => o is Mark);
        if (i < 0) throw Error("pickle data has no MARK where one is needed (corrupt data).");
        var items = _stack.GetRange(i + 1, _stack.Count - i - 1);
        Count(items.Count);
        _stack.RemoveRange(i, _stack.Count - i);
        return items;
    }

    object? Recall(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"pickle refers to memo entry {key}, which was never stored.");

    Global MakeGlobal(string module, string name)
    {
        var g = new Global(module, name);
        if (!IsAllowed(g))
            throw Error($"refuses the pickled global '{Util.ControlCharacters.Quote(g.ToString(), 100)}': only tensor-rebuilding globals are allowed in a checkpoint " +
                        "(collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage). " +
                        "The file may contain code; it is not loaded.");
        return g;
    }

    string AsString(object? o, string what) => o as string ?? throw Error($"expected a string {what} in the pickle, got {Describe(o)}.");

    static string Describe(object? o) => o switch
    {
        null => "None",
        string s => $"'{Util.ControlCharacters.Quote(s, 60)}'",
        long l => l.ToString(),
        Global g => g.ToString(),
        _ => o.GetType().Name,
    };

    PickleDict AsDict(object? o) => o as PickleDict ?? throw Error($"expected a dict on the pickle stack, got {Describe(o)}.");
    List<object?> AsList(object? o) => o as List<object?> ?? throw Error($"expected a list on the pickle stack, got {Describe(o)}.");

    object KeyOf(object? k) => k ?? throw Error("a dict key is None.");

    void AddPairs(PickleDict d, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Error("a dict has an odd number of keys and values.");
        Count(items.Count / 2);
        for (int i = 0; i < items.Count; i += 2) d.Items.Add(new(KeyOf(items[i]), items[i + 1]));
    }

    object?[] Args(object? args, string func) => args as object?[] ?? throw Error($"arguments of {func} must be a tuple, got {Describe(args)}.");

    object? Reduce(object? func, object? args)
    {
        if (func is not Global g) throw Error($"REDUCE on {Describe(func)}, which is not a callable global.");
        var a = Args(args, g.ToString());
        switch (g.ToString())
        {
            case "collections.OrderedDict":
                if (a.Length != 0) throw Error("OrderedDict built from arguments is not supported.");
                return new PickleDict();
            case "torch._utils._rebuild_tensor_v2":
                if (a.Length is < 6 or > 7) throw Error($"_rebuild_tensor_v2 takes 6 or 7 arguments, got {a.Length}.");
                var storage = a[0] as StorageRef ?? throw Error($"_rebuild_tensor_v2: first argument must be a storage, got {Describe(a[0])}.");
                long offset = a[1] as long? ?? throw Error("_rebuild_tensor_v2: storage offset must be an integer.");
                var shape = Longs(a[2], "size");
                var strides = Longs(a[3], "stride");
                if (shape.Length != strides.Length) throw Error($"tensor has {shape.Length} sizes but {strides.Length} strides.");
                return new TensorRef(storage, offset, shape, strides);
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (a.Length < 3 || a[0] is not TensorRef t) throw Error($"{g}: first argument must be a tensor.");
                return t;
            default:
                throw Error($"global '{g}' cannot be called.");
        }
    }

    long[] Longs(object? o, string what)
    {
        var items = o as object?[] ?? throw Error($"tensor {what} must be a tuple of integers, got {Describe(o)}.");
        return items.Select(x => x as long? ?? throw Error($"tensor {what} must hold integers, got {Describe(x)}.")).ToArray();
    }

    void Build(object? target, object? state)
    {
        // A state dict pickles its "_metadata" (module versions) as the OrderedDict's state: irrelevant to the weights.
        if (target is PickleDict || target is TensorRef) return;
        throw Error($"BUILD on {Describe(target)} is not supported.");
    }

    object PersistentLoad(object? pid)
    {
        // ('storage', torch.FloatStorage, key, location, numel)
        if (pid is not object?[] { Length: 5 } t || t[0] as string != "storage")
            throw Error($"unsupported persistent id {Describe(pid)} (expected a ('storage', type, key, location, numel) tuple).");
        if (t[1] is not Global { Module: "torch" } type || !StorageTypes.TryGetValue(type.Name, out var info))
            throw Error($"unsupported storage type {Describe(t[1])}.");
        string key = t[2] as string ?? throw Error("storage key must be a string.");
        long numel = t[4] as long? ?? throw Error("storage size must be an integer.");
        if (numel < 0) throw Error($"storage '{key}' has negative size {numel}.");
        return new StorageRef(key, info.DType, info.Size, numel);
    }
}
