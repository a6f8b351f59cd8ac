using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

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

    public static void Write(string path, IReadOnlyList<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var contiguous = new List<(string Name, Tensor Value)>();
        using var scope = NewDisposeScope();
        foreach (var (name, value) in tensors)
        {
            if (!names.Add(name)) throw new ArgumentException($"Tensor '{name}' is listed twice.");
            contiguous.Add((name, value.detach().cpu().contiguous()));
        }
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
            foreach (var (name, value) in contiguous)
            {
                long bytes = value.NumberOfElements * value.ElementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", DTypeName(value.dtype));
                json.WriteStartArray("shape");
                foreach (var d in value.shape) json.WriteNumberValue(d);
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

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        Util.AtomicFile.Write(path, f =>
        {
            f.Write(BitConverter.GetBytes((ulong)header.Length));
            header.Position = 0;
            header.CopyTo(f);
            foreach (var (_, value) in contiguous)
            {
                if (value.NumberOfElements == 0) continue;
                using var flat = value.view(-1);
                f.Write(flat.bytes);
            }
        });
    }
}
