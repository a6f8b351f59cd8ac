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

    public string Path { get; }
    public IReadOnlyDictionary<string, StoredTensor> Entries { get; }

    TorchCheckpointFile(string path, FileStream stream, ZipArchive zip, string prefix, Dictionary<string, RestrictedUnpickler.TensorRef> tensors)
    {
        Path = path;
        _stream = stream;
        _zip = zip;
        _prefix = prefix;
        _tensors = tensors;
        Entries = tensors.ToDictionary(kv => kv.Key, kv => new StoredTensor(kv.Key, kv.Value.Storage.DType, kv.Value.Shape), StringComparer.Ordinal);
    }

    public static TorchCheckpointFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("torch checkpoint reading needs a little-endian machine.");
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
                    using var r = new StreamReader(byteorder.Open());
                    string order = r.ReadToEnd().Trim();
                    if (order != "little") throw new CheckpointException($"{path}: tensors are stored {order}-endian; only little-endian is supported.");
                }
                byte[] pickle;
                using (var s = pkl[0].Open())
                using (var ms = new MemoryStream())
                {
                    s.CopyTo(ms);
                    pickle = ms.ToArray();
                }
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
        if (t.Shape.Any(d => d < 0) || t.Strides.Any(s => s < 0) || t.Offset < 0)
            throw new CheckpointException($"{path}: tensor '{name}' has a negative size, stride or offset.");
        if (t.Shape.Contains(0)) return;
        long last;
        try
        {
            last = t.Offset;
            for (int i = 0; i < t.Shape.Length; i++) last = checked(last + (t.Shape[i] - 1) * t.Strides[i]);
        }
        catch (OverflowException)
        {
            throw new CheckpointException($"{path}: tensor '{name}' has absurd sizes or strides.");
        }
        if (last >= t.Storage.ElementCount)
            throw new CheckpointException($"{path}: tensor '{name}' [{string.Join(", ", t.Shape)}] reaches element {last} of a storage of {t.Storage.ElementCount}.");
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
            using (buffer)
                return buffer.as_strided(t.Shape, t.Strides, t.Offset).contiguous();
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
