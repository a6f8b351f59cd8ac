using System.Text.Json;

namespace Workbook.Checkpoints;

/// <summary>Typed access to a <c>config.json</c>, with errors that name the file and the field.</summary>
public sealed class ConfigJson
{
    readonly JsonElement _root;
    public string Path { get; }

    ConfigJson(string path, JsonElement root)
    {
        Path = path;
        _root = root;
    }

    public static ConfigJson Load(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException($"{path}: config file not found.");
        using var doc = Util.JsonInput.ReadFile(path, Error, maxDepth: 32, maxBytes: Util.JsonInput.MaxSmallFileBytes);
        return new ConfigJson(path, Util.JsonInput.RootObject(doc, path, Error).Clone());
    }

    static Exception Error(string message, Exception? inner) => new CheckpointException(message, inner);

    public static ConfigJson Parse(string text, string path = "config.json")
    {
        using var doc = Util.JsonInput.Parse(text, path, Error, maxDepth: 32);
        return new ConfigJson(path, Util.JsonInput.RootObject(doc, path, Error).Clone());
    }

    bool TryGet(string key, out JsonElement value)
    {
        JsonElement current = _root;
        foreach (var part in key.Split('.'))
        {
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(part, out current) || current.ValueKind == JsonValueKind.Null)
            {
                value = default;
                return false;
            }
        }
        value = current;
        return true;
    }

    public bool Has(string key) => TryGet(key, out _);

    public int Int(string key) => OptionalInt(key) ?? throw new CheckpointException($"{Path}: missing required integer '{key}'.");

    public int? OptionalInt(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw new CheckpointException($"{Path}: '{key}' must be an integer, got {v.GetRawText()}.");
    }

    public double? OptionalDouble(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d)) return d;
        throw new CheckpointException($"{Path}: '{key}' must be a number, got {v.GetRawText()}.");
    }

    public bool? OptionalBool(string key)
    {
        if (!TryGet(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new CheckpointException($"{Path}: '{key}' must be true or false, got {v.GetRawText()}."),
        };
    }

    public string? OptionalString(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        throw new CheckpointException($"{Path}: '{key}' must be a string, got {v.GetRawText()}.");
    }

    public IReadOnlyList<string> StringList(string key)
    {
        if (!TryGet(key, out var v)) return Array.Empty<string>();
        if (v.ValueKind != JsonValueKind.Array) throw new CheckpointException($"{Path}: '{key}' must be an array of strings.");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String
            ? e.GetString()!
            : throw new CheckpointException($"{Path}: '{key}' must be an array of strings.")).ToList();
    }

    /// <summary>A positive integer field, with the range checked.</summary>
    public int PositiveInt(string key, int max = 1 << 24)
    {
        int v = Int(key);
        if (v <= 0 || v > max) throw new CheckpointException($"{Path}: '{key}' = {v} is out of range (1..{max}).");
        return v;
    }
}
