using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reader for the safetensors format: an 8-byte little-endian header length, a JSON header
/// <c>{name: {dtype, shape, data_offsets}}</c> (plus optional <c>__metadata__</c>), then raw little-endian data.
/// Every header field is validated against the file before any tensor is read.
/// </summary>
public sealed class SafetensorsFile : ITensorFile
{
    /// <summary>Largest header accepted (the format's reference implementation uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    readonly SafeFileHandle _handle;
    readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyDictionary<string, StoredTensor> Entries { get; }
    public double StoredValues => Tensors.Values.Sum(t => (double)t.ElementCount);

    SafetensorsFile(string path, SafeFileHandle handle, long dataStart, Dictionary<string, SafetensorsEntry> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _handle = handle;
        _dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
        Entries = tensors.ToDictionary(kv => kv.Key, kv => new StoredTensor(kv.Key, kv.Value.DType, kv.Value.Shape), StringComparer.Ordinal);
    }

    /// <summary>Opens and validates a file; throws <see cref="CheckpointException"/> naming the problem.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors reading needs a little-endian machine.");
        WeightFiles.EnsureRegularFile(path);
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"{path}: cannot open: {e.Message}", e);
        }
        try
        {
            var (dataStart, tensors, metadata) = ParseHeader(path, handle);
            return new SafetensorsFile(path, handle, dataStart, tensors, metadata);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    static (long, Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(string path, SafeFileHandle handle)
    {
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8) throw new CheckpointException($"{path}: {fileLength} bytes is too short for a safetensors file (needs an 8-byte header length).");
        Span<byte> lenBytes = stackalloc byte[8];
        ReadExactly(handle, lenBytes, 0, path);
        ulong headerLen = BitConverter.ToUInt64(lenBytes);
        if (headerLen > MaxHeaderBytes)
            throw new CheckpointException($"{path}: header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit.");
        if ((long)headerLen > fileLength - 8)
            throw new CheckpointException($"{path}: header length {headerLen} runs past the end of the {fileLength}-byte file (truncated?).");
        var header = new byte[headerLen];
        ReadExactly(handle, header, 8, path);
        long dataStart = 8 + (long)headerLen, dataLength = fileLength - dataStart;

        string source = $"{path} (header)";
        using (var doc = Util.JsonInput.Parse(header, source, (m, e) => new CheckpointException(m, e), maxDepth: 16))
        {
            Util.JsonInput.RootObject(doc, source, (m, e) => new CheckpointException(m, e));
            var tensors = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new CheckpointException($"{path}: __metadata__ must be an object of strings.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new CheckpointException($"{path}: __metadata__ value '{m.Name}' must be a string.");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                if (tensors.ContainsKey(prop.Name)) throw new CheckpointException($"{path}: tensor '{prop.Name}' is listed twice.");
                tensors[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
            }
            // Tensors must not overlap (a corrupt or hostile header could alias two tensors).
            SafetensorsEntry? previous = null;
            foreach (var e in tensors.Values.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin))
            {
                if (previous != null && e.Begin < previous.End)
                    throw new CheckpointException($"{path}: tensors '{previous.Name}' and '{e.Name}' overlap (bytes {previous.Begin}-{previous.End} and {e.Begin}-{e.End}).");
                previous = e;
            }
            return (dataStart, tensors, metadata);
        }
    }

    static SafetensorsEntry ParseEntry(string path, string name, JsonElement v, long dataLength)
    {
        string Where() => $"{path}: tensor '{name}'";
        if (v.ValueKind != JsonValueKind.Object) throw new CheckpointException($"{Where()}: entry must be an object.");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new CheckpointException($"{Where()}: missing string field 'dtype'.");
        string dtype = dt.GetString()!;
        if (!DTypes.TryGetValue(dtype, out var info))
            throw new CheckpointException($"{Where()}: unsupported dtype '{dtype}' (supported: {string.Join(", ", DTypes.Keys)}).");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new CheckpointException($"{Where()}: missing array field 'shape'.");
        var shape = new List<long>();
        long count = 1;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new CheckpointException($"{Where()}: shape entries must be non-negative integers, got {d.GetRawText()}.");
            shape.Add(dim);
            try
            {
                count = checked(count * dim);
            }
            catch (OverflowException)
            {
                throw new CheckpointException($"{Where()}: shape [{string.Join(", ", shape)}...] is absurdly large (element count overflows).");
            }
        }
        if (shape.Count > 8) throw new CheckpointException($"{Where()}: {shape.Count} dimensions is more than supported (8).");
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new CheckpointException($"{Where()}: 'data_offsets' must be an array [begin, end].");
        var offsets = off.EnumerateArray().ToArray();
        if (offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw new CheckpointException($"{Where()}: data offsets must be integers, got {off.GetRawText()}.");
        if (begin < 0 || end < begin)
            throw new CheckpointException($"{Where()}: data offsets [{begin}, {end}] are not an increasing pair.");
        if (end > dataLength)
            throw new CheckpointException($"{Where()}: data offsets [{begin}, {end}] are out of range: the data section has {dataLength} bytes (truncated file?).");
        long expected;
        try
        {
            expected = checked(count * info.Size);
        }
        catch (OverflowException)
        {
            throw new CheckpointException($"{Where()}: shape [{string.Join(", ", shape)}] is absurdly large.");
        }
        if (expected != end - begin)
            throw new CheckpointException($"{Where()}: shape [{string.Join(", ", shape)}] of {dtype} needs {expected} bytes but its offsets span {end - begin}.");
        return new SafetensorsEntry(name, dtype, shape.ToArray(), begin, end);
    }

    static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset, string path)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(handle, buffer, offset);
            if (n <= 0) throw new CheckpointException($"{path}: unexpected end of file at byte {offset}.");
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <summary>Chunk size used when copying tensor bytes (tests lower it to exercise chunking).</summary>
    internal static int CopyChunkBytes { get; set; } = 1 << 28;

    /// <summary>
    /// Reads one tensor into a new CPU tensor of its stored dtype. The caller owns the result.
    /// </summary>
    public Tensor Read(string name)
    {
        if (!Tensors.TryGetValue(name, out var e))
            throw new CheckpointException($"{Path}: no tensor named '{name}'.");
        var (type, size) = DTypes[e.DType];
        var t = empty(e.Shape, dtype: type, device: CPU);
        try
        {
            if (e.ElementCount == 0) return t;
            using var flat = t.view(-1);
            long elementsPerChunk = Math.Max(1, CopyChunkBytes / size);
            for (long start = 0; start < e.ElementCount; start += elementsPerChunk)
            {
                long n = Math.Min(elementsPerChunk, e.ElementCount - start);
                using var chunk = flat.narrow(0, start, n);
                ReadExactly(_handle, chunk.bytes, _dataStart + e.Begin + start * size, Path);
            }
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    public void Dispose() => _handle.Dispose();
}
