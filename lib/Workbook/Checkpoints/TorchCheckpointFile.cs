using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// A PyTorch state dict saved with <c>torch.save</c> (PyTorch 1.6+ zip format: <c>{archive}/data.pkl</c>, the
/// pickled dict of tensors, plus one raw little-endian file per storage in <c>{archive}/data/{key}</c>), as in
/// <c>pytorch_model.bin</c> and TransformerLens <c>*.pth</c> checkpoints. The pickle is read by a restricted
/// unpickler that refuses every global except the ones that rebuild tensors; tensors are read one at a time.
/// </summary>
public sealed class TorchCheckpointFile : ITensorFile
{
    readonly FileStream _stream;
    readonly ZipArchive _zip;
    readonly string _prefix;
    readonly Dictionary<string, RestrictedUnpickler.TensorRef> _tensors;

    /// <summary>Largest <c>data.pkl</c> read: a state dict's pickle is a few hundred bytes per tensor (kilobytes for GPT-2 XL).</summary>
    public const long MaxPickleBytes = 64L << 20;

    /// <summary>Most dimensions a stored tensor may have (PyTorch itself allows 64).</summary>
    public const int MaxDimensions = 64;

    public string Path { get; }
    public IReadOnlyDictionary<string, StoredTensor> Entries { get; }
    public double StoredValues { get; }

    TorchCheckpointFile(string path, FileStream stream, ZipArchive zip, string prefix, Dictionary<string, RestrictedUnpickler.TensorRef> tensors)
    {
        Path = path;
        _stream = stream;
        _zip = zip;
        _prefix = prefix;
        _tensors = tensors;
        Entries = tensors.ToDictionary(kv => kv.Key, kv => new StoredTensor(kv.Key, kv.Value.Storage.DType, kv.Value.Shape), StringComparer.Ordinal);
        StoredValues = tensors.Values.Select(t => t.Storage).DistinctBy(s => s.Key).Sum(s => (double)s.ElementCount);
    }

    public static TorchCheckpointFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("torch checkpoint reading needs a little-endian machine.");
        WeightFiles.EnsureRegularFile(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"{path}: cannot open: {e.Message}", e);
        }
        try
        {
            Span<byte> magic = stackalloc byte[4];
            int n = stream.Read(magic);
            stream.Position = 0;
            if (n < 4 || magic[0] != 'P' || magic[1] != 'K')
                throw new CheckpointException($"{path}: not a zip archive. Only the PyTorch 1.6+ torch.save format is supported " +
                                              "(a file from an older PyTorch can be re-saved with torch.save(torch.load(f), f) in a recent one).");
            ZipArchive zip;
            try
            {
                zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            }
            catch (Exception e) when (IsZipDamage(e))
            {
                throw CorruptZip(path, e);
            }
            try
            {
                var pkl = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
                if (pkl.Count != 1)
                    throw new CheckpointException($"{path}: expected exactly one '<archive>/data.pkl' in the zip, found {pkl.Count}; not a torch.save file.");
                string prefix = pkl[0].FullName[..^"data.pkl".Length];
                var byteorder = zip.GetEntry(prefix + "byteorder");
                if (byteorder != null)
                {
                    // The record is one word; read no more than a few bytes of it, whatever the zip claims.
                    var order = System.Text.Encoding.Latin1.GetString(ReadEntry(byteorder, 16, path, "the byteorder record", refuseLonger: false)).Trim();
                    if (order == "big") throw new CheckpointException($"{path}: tensors are stored big-endian; only little-endian is supported.");
                    if (order != "little")
                        throw new CheckpointException($"{path}: unknown byteorder record '{Util.ControlCharacters.Quote(order, 16)}' (torch.save writes 'little' or 'big'); corrupt file?");
                }
                byte[] pickle = ReadEntry(pkl[0], MaxPickleBytes, path, "the pickle (data.pkl)", refuseLonger: true);
                var root = RestrictedUnpickler.Load(pickle, path);
                var tensors = StateDict(root, path);
                foreach (var (name, t) in tensors) Validate(path, stream.Length, zip, prefix, name, t);
                return new TorchCheckpointFile(path, stream, zip, prefix, tensors);
            }
            catch (Exception e) when (IsZipDamage(e))
            {
                zip.Dispose();
                throw CorruptZip(path, e); // the central directory and entries are read lazily: damage shows up here too
            }
            catch
            {
                zip.Dispose();
                throw;
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads at most <paramref name="maxBytes"/> of a zip entry, never trusting the sizes the zip states (a few
    /// kilobytes of deflate can expand to gigabytes). Longer entries are refused, or cut when <paramref name="refuseLonger"/> is false.
    /// </summary>
    static byte[] ReadEntry(ZipArchiveEntry entry, long maxBytes, string path, string what, bool refuseLonger)
    {
        if (refuseLonger && entry.Length > maxBytes)
            throw new CheckpointException($"{path}: {what} is {entry.Length:N0} bytes, more than the {maxBytes:N0} a state dict's can need (corrupt or hostile file?).");
        using var s = entry.Open();
        using var result = new MemoryStream((int)Math.Min(Math.Max(entry.Length, 0), maxBytes));
        var chunk = new byte[81920];
        while (result.Length <= maxBytes)
        {
            int n = s.Read(chunk, 0, (int)Math.Min(chunk.Length, maxBytes + 1 - result.Length));
            if (n == 0) break;
            result.Write(chunk, 0, n);
        }
        if (result.Length > maxBytes)
        {
            if (refuseLonger) throw new CheckpointException($"{path}: {what} is longer than the {maxBytes:N0} bytes a state dict's can need (corrupt or hostile file?).");
            result.SetLength(maxBytes);
        }
        return result.ToArray();
    }

    /// <summary>What System.IO.Compression throws for a damaged archive (bad headers, sizes, compressed data or methods).</summary>
    static bool IsZipDamage(Exception e) => e is InvalidDataException or NotSupportedException || (e is IOException && e is not FileNotFoundException);

    static CheckpointException CorruptZip(string path, Exception e) =>
        new($"{path}: corrupt zip archive ({e.Message}); the download may be incomplete.", e);

    static Dictionary<string, RestrictedUnpickler.TensorRef> StateDict(object? root, string path)
    {
        if (root is not RestrictedUnpickler.PickleDict dict)
            throw new CheckpointException($"{path}: the pickled object is not a dict of tensors (a state dict).");
        var tensors = new Dictionary<string, RestrictedUnpickler.TensorRef>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name) throw new CheckpointException($"{path}: state dict key {key} is not a string.");
            if (value is not RestrictedUnpickler.TensorRef t)
                throw new CheckpointException($"{path}: state dict entry '{name}' is not a tensor ({value?.GetType().Name ?? "None"}); expected a plain state dict.");
            if (!tensors.TryAdd(name, t)) throw new CheckpointException($"{path}: tensor '{name}' appears twice.");
        }
        return tensors;
    }

    static void Validate(string path, long fileLength, ZipArchive zip, string prefix, string name, RestrictedUnpickler.TensorRef t)
    {
        var entry = zip.GetEntry(prefix + "data/" + t.Storage.Key)
            ?? throw new CheckpointException($"{path}: tensor '{name}' uses storage '{t.Storage.Key}', which is missing from the archive.");
        long bytes;
        try
        {
            bytes = checked(t.Storage.ElementCount * t.Storage.ElementSize);
        }
        catch (OverflowException)
        {
            throw new CheckpointException($"{path}: storage '{t.Storage.Key}' is absurdly large.");
        }
        if (entry.Length < bytes)
            throw new CheckpointException($"{path}: storage '{t.Storage.Key}' of tensor '{name}' has {entry.Length} bytes, needs {bytes} (truncated file?).");
        // The zip's own size fields are data too: a storage cannot hold more than its compressed bytes can expand to
        // (deflate at most ~1032:1), nor can those exceed the file. Checked before any buffer is allocated.
        if (entry.CompressedLength > fileLength || (double)bytes > Math.Max(1, entry.CompressedLength) * 1032.0)
            throw new CheckpointException($"{path}: storage '{t.Storage.Key}' of tensor '{name}' claims {bytes} bytes from {entry.CompressedLength} stored bytes in a {fileLength}-byte file (corrupt archive?).");
        CheckView(path, name, t);
    }

    /// <summary>
    /// A tensor is a strided view of its storage: it must lie inside the storage (offset + Σ (size − 1)·stride + 1
    /// elements, computed without overflow) and hold no more elements than the storage does. A view with more, such as
    /// a stride of 0 along a long dimension, repeats stored values: legal in PyTorch (expand), but never what a state
    /// dict holds, and the way a few stored bytes would be turned into gigabytes when the tensor is read.
    /// </summary>
    internal static void CheckView(string path, string name, RestrictedUnpickler.TensorRef t)
    {
        if (t.Shape.Length > MaxDimensions) throw new CheckpointException($"{path}: tensor '{name}' has {t.Shape.Length} dimensions (at most {MaxDimensions}).");
        if (t.Shape.Any(d => d < 0) || t.Strides.Any(s => s < 0) || t.Offset < 0)
            throw new CheckpointException($"{path}: tensor '{name}' has a negative size, stride or offset.");
        if (t.Offset > t.Storage.ElementCount)
            throw new CheckpointException($"{path}: tensor '{name}' starts at element {t.Offset} of a storage of {t.Storage.ElementCount}.");
        long count = 1, last = t.Offset;
        try
        {
            // Even an empty tensor's other sizes must multiply without overflow: libtorch computes its strides from them.
            foreach (var d in t.Shape) count = checked(count * Math.Max(1, d));
            if (t.Shape.Contains(0)) return; // no elements: nothing is read, whatever the strides
            count = 1;
            for (int i = 0; i < t.Shape.Length; i++)
            {
                count = checked(count * t.Shape[i]);
                last = checked(last + (t.Shape[i] - 1) * t.Strides[i]);
            }
        }
        catch (OverflowException)
        {
            throw new CheckpointException($"{path}: tensor '{name}' has absurd sizes or strides [{string.Join(", ", t.Shape)}] / [{string.Join(", ", t.Strides)}].");
        }
        if (last >= t.Storage.ElementCount)
            throw new CheckpointException($"{path}: tensor '{name}' [{string.Join(", ", t.Shape)}] reaches element {last} of a storage of {t.Storage.ElementCount}.");
        if (count > t.Storage.ElementCount)
            throw new CheckpointException($"{path}: tensor '{name}' [{string.Join(", ", t.Shape)}] with strides [{string.Join(", ", t.Strides)}] has {count:N0} elements " +
                $"but views a storage of {t.Storage.ElementCount:N0}: it repeats stored values (a stride of 0 or overlapping strides), which a state dict never does; not loaded.");
    }

    static ScalarType TorchType(string dtype) => dtype switch
    {
        "F32" => ScalarType.Float32, "F16" => ScalarType.Float16, "BF16" => ScalarType.BFloat16, "F64" => ScalarType.Float64,
        "I64" => ScalarType.Int64, "I32" => ScalarType.Int32, "I16" => ScalarType.Int16, "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte, "BOOL" => ScalarType.Bool,
        _ => throw new CheckpointException($"unsupported dtype {dtype}."),
    };

    public Tensor Read(string name)
    {
        if (!_tensors.TryGetValue(name, out var t)) throw new CheckpointException($"{Path}: no tensor named '{name}'.");
        var type = TorchType(t.Storage.DType);
        int size = t.Storage.ElementSize;
        long count = t.Shape.Aggregate(1L, (a, b) => a * b);
        var contiguous = ContiguousStrides(t.Shape);
        bool isContiguous = count == 0 || t.Shape.Select((d, i) => d == 1 || t.Strides[i] == contiguous[i]).All(x => x);
        // A contiguous tensor needs only its own bytes; a strided view reads its whole storage, then copies the view.
        long first = isContiguous ? t.Offset : 0;
        long elements = isContiguous ? count : t.Storage.ElementCount;
        var buffer = empty(new[] { elements }, dtype: type, device: CPU);
        try
        {
            if (elements > 0)
            {
                var entry = _zip.GetEntry(_prefix + "data/" + t.Storage.Key)!;
                using var s = entry.Open();
                Skip(s, first * size);
                long chunkElements = Math.Max(1, (1 << 26) / size);
                for (long start = 0; start < elements; start += chunkElements)
                {
                    long n = Math.Min(chunkElements, elements - start);
                    using var chunk = buffer.narrow(0, start, n);
                    var span = chunk.bytes;
                    int read = 0;
                    while (read < span.Length)
                    {
                        int got = s.Read(span[read..]);
                        if (got <= 0) throw new CheckpointException($"{Path}: storage '{t.Storage.Key}' of tensor '{name}' ends early (truncated file?).");
                        read += got;
                    }
                }
            }
            if (isContiguous)
            {
                var view = buffer.view(t.Shape);
                buffer.Dispose(); // the view keeps the storage alive
                return view;
            }
            // The strided view is disposed here, not left to the finalizer: a temporary whose only use is the native
            // call on it can be finalized during that call.
            using (buffer)
            using (var strided = buffer.as_strided(t.Shape, t.Strides, t.Offset))
                return strided.contiguous();
        }
        catch (Exception e) when (IsZipDamage(e))
        {
            buffer.Dispose();
            throw new CheckpointException($"{Path}: storage '{t.Storage.Key}' of tensor '{name}' cannot be read: {e.Message} (corrupt archive?)", e);
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= Math.Max(1, shape[i]);
        }
        return strides;
    }

    static void Skip(Stream s, long bytes)
    {
        if (bytes == 0) return;
        if (s.CanSeek)
        {
            s.Seek(bytes, SeekOrigin.Current);
            return;
        }
        var scratch = new byte[Math.Min(bytes, 1 << 20)];
        while (bytes > 0)
        {
            int got = s.Read(scratch, 0, (int)Math.Min(scratch.Length, bytes));
            if (got <= 0) throw new CheckpointException("storage ends early (truncated file?).");
            bytes -= got;
        }
    }

    public void Dispose()
    {
        _zip.Dispose();
        _stream.Dispose();
    }
}
