using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>A tensor to be written: its name, dtype and shape, known before its values exist.</summary>
public sealed record TensorSpec(string Name, ScalarType DType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>Writes tensors in the safetensors format. The file appears only once complete (temp file, then rename).</summary>
public static class SafetensorsWriter
{
    static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float64 => "F64", ScalarType.Float32 => "F32", ScalarType.Float16 => "F16", ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64", ScalarType.Int32 => "I32", ScalarType.Int16 => "I16", ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8", ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"dtype {t} cannot be written to safetensors."),
    };

    static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    public static void Write(string path, IReadOnlyList<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = NewDisposeScope();
        var contiguous = tensors.Select(t => (t.Name, Value: t.Value.detach().cpu().contiguous())).ToList();
        WriteStreaming(path, contiguous.Select(t => new TensorSpec(t.Name, t.Value.dtype, t.Value.shape)).ToList(), (_, i) => contiguous[i].Value.alias(), metadata);
    }

    /// <summary>
    /// Writes the header from <paramref name="specs"/>, then each tensor as <paramref name="produce"/> makes it (and
    /// disposes it), so memory holds one tensor at a time whatever the file's size. Each produced tensor must match its
    /// spec's dtype and shape. Returns the file's SHA-256 (lowercase hex) when <paramref name="sha256"/> is set, else null.
    /// </summary>
    public static string? WriteStreaming(string path, IReadOnlyList<TensorSpec> specs, Func<TensorSpec, int, Tensor> produce,
        IReadOnlyDictionary<string, string>? metadata = null, bool sha256 = false, Action<int, TensorSpec>? afterTensor = null)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in specs)
            if (!names.Add(spec.Name)) throw new ArgumentException($"Tensor '{spec.Name}' is listed twice.");
        var header = Header(specs, metadata);

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var hash = sha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        // Through AtomicFile: an exclusive, unpredictable temporary name, never through a link, renamed when complete.
        Util.AtomicFile.Write(path, f =>
        {
            void Put(ReadOnlySpan<byte> bytes)
            {
                f.Write(bytes);
                hash?.AppendData(bytes);
            }
            Put(BitConverter.GetBytes((ulong)header.Length));
            Put(header);
            for (int i = 0; i < specs.Count; i++)
            {
                var spec = specs[i];
                using var scope = NewDisposeScope();
                var value = produce(spec, i).detach().cpu().contiguous();
                if (value.dtype != spec.DType || !value.shape.SequenceEqual(spec.Shape))
                    throw new ArgumentException($"Tensor '{spec.Name}' was made as {value.dtype} [{string.Join(", ", value.shape)}] but declared {spec.DType} [{string.Join(", ", spec.Shape)}].");
                if (value.NumberOfElements > 0)
                {
                    using var flat = value.view(-1);
                    Put(flat.bytes);
                }
                afterTensor?.Invoke(i, spec);
            }
        });
        return hash is null ? null : Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    static byte[] Header(IReadOnlyList<TensorSpec> specs, IReadOnlyDictionary<string, string>? metadata)
    {
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata != null)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var spec in specs)
            {
                long bytes = spec.ElementCount * ElementSize(spec.DType);
                json.WriteStartObject(spec.Name);
                json.WriteString("dtype", DTypeName(spec.DType));
                json.WriteStartArray("shape");
                foreach (var d in spec.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 bytes, as the reference implementation does.
        int pad = (int)((8 - header.Length % 8) % 8);
        header.Write(Encoding.ASCII.GetBytes(new string(' ', pad)));
        return header.ToArray();
    }
}
