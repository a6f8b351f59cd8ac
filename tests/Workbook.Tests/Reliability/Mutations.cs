using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Workbook.Tests.Reliability;

/// <summary>
/// Structured and unstructured mutations of valid inputs, driven by a seeded <see cref="Random"/> so that every
/// generated case can be reproduced from its seed: JSON edits (delete, retype, change numbers to edge values,
/// duplicate keys, rename keys, deep nesting), text edits (truncate, flip, insert) and byte edits.
/// </summary>
public static partial class Mutations
{
    /// <summary>Numbers that break naive parsers: zero, negatives, int/long limits and beyond, fractions, huge and tiny doubles.</summary>
    static readonly string[] EdgeNumbers =
    {
        "0", "-1", "1", "2", "-2147483648", "2147483647", "2147483648", "4294967296", "-9223372036854775808", "9223372036854775807",
        "9223372036854775808", "18446744073709551616", "123456789012345678901234567890", "0.5", "-0.0", "1e308", "-1e308", "1e-320",
        "1e400", "3.0", "1E3", "16777216", "16777217", "65536", "1073741824",
    };

    static readonly string[] EdgeStrings = { "", " ", "F32", "F16", "BF16", "I64", "X99", "gpt2", "gpt_neox", "..", "../x", "a\u0000b", "\ud83d\ude00", "A0.1", "Resid End", "null", "\\", "end", "S2", "IO+1", "x..y" };

    /// <summary>A random JSON value as text: any type, edge numbers, odd strings, empty and nested containers.</summary>
    public static string RandomJsonValue(Random r, int depth = 0)
    {
        switch (r.Next(depth > 2 ? 6 : 9))
        {
            case 0: return "null";
            case 1: return r.Next(2) == 0 ? "true" : "false";
            case 2:
            case 3: return EdgeNumbers[r.Next(EdgeNumbers.Length)];
            case 4: return r.Next(3) == 0 ? r.Next(-5, 600).ToString() : JsonString(EdgeStrings[r.Next(EdgeStrings.Length)]);
            case 5: return JsonString(RandomText(r, r.Next(0, 12)));
            case 6: return "[" + string.Join(",", Enumerable.Range(0, r.Next(0, 4)).Select(_ => RandomJsonValue(r, depth + 1))) + "]";
            case 7: return "{" + string.Join(",", Enumerable.Range(0, r.Next(0, 3)).Select(_ => JsonString(RandomText(r, r.Next(0, 6))) + ":" + RandomJsonValue(r, depth + 1))) + "}";
            default: int deep = 20 + r.Next(100); return new string('[', deep) + new string(']', deep); // deep nesting
        }
    }

    public static string JsonString(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    public static string RandomText(Random r, int length)
    {
        const string alphabet = "abcXYZ019 .,-_@>/\\\"'{}[]:\n\té漢";
        var sb = new StringBuilder();
        for (int i = 0; i < length; i++)
            sb.Append(r.Next(20) == 0 ? (char)r.Next(0, 0xD7FF) : alphabet[r.Next(alphabet.Length)]);
        return sb.ToString();
    }

    /// <summary>One to three mutations of <paramref name="json"/>; most are structural (the result is often still valid JSON).</summary>
    public static string MutateJson(string json, Random r)
    {
        int rounds = 1 + r.Next(3);
        for (int i = 0; i < rounds; i++) json = MutateJsonOnce(json, r);
        return json;
    }

    static string MutateJsonOnce(string json, Random r)
    {
        switch (r.Next(12))
        {
            case 0: return Truncate(json, r);
            case 1: return FlipChars(json, r);
            case 2: return InsertText(json, r);
            case 3: return DuplicateKey(json, r);
            default: return Structural(json, r) ?? FlipChars(json, r);
        }
    }

    public static string Truncate(string s, Random r) => s.Length == 0 ? s : s[..r.Next(s.Length)];

    const string JsonChars = "{}[]\",:0-9e.\\ ";

    public static string FlipChars(string s, Random r)
    {
        if (s.Length == 0) return RandomText(r, 3);
        var chars = s.ToCharArray();
        for (int k = 1 + r.Next(3); k > 0; k--)
            chars[r.Next(chars.Length)] = r.Next(3) == 0 ? (char)r.Next(32, 127) : JsonChars[r.Next(JsonChars.Length)];
        return new string(chars);
    }

    public static string InsertText(string s, Random r)
    {
        int at = r.Next(s.Length + 1);
        string snippet = r.Next(3) switch { 0 => RandomJsonValue(r), 1 => new string('[', r.Next(200)), _ => RandomText(r, 1 + r.Next(6)) };
        return s[..at] + snippet + s[at..];
    }

    [GeneratedRegex("\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:")]
    private static partial Regex KeyPattern();

    /// <summary>Inserts a second copy of some key (with a random value) just before it, in the same object.</summary>
    public static string DuplicateKey(string json, Random r)
    {
        var keys = KeyPattern().Matches(json);
        if (keys.Count == 0) return InsertText(json, r);
        var m = keys[r.Next(keys.Count)];
        string value = r.Next(2) == 0 ? RandomJsonValue(r) : JsonValueAfter(json, m.Index + m.Length) ?? "null";
        return json[..m.Index] + m.Value + " " + value + ", " + json[m.Index..];
    }

    static string? JsonValueAfter(string json, int start)
    {
        // The scalar that follows a key (containers are copied as "null"): enough for a duplicate with the same value.
        var tail = json[start..].TrimStart();
        var m = Regex.Match(tail, "^(\"(?:[^\"\\\\]|\\\\.)*\"|-?[0-9.eE+-]+|true|false|null)");
        return m.Success ? m.Value : null;
    }

    /// <summary>An edit of the parsed tree: remove a node, replace it (another type or an edge value), rename a key, grow or empty a container.</summary>
    static string? Structural(string json, Random r)
    {
        try
        {
            return StructuralCore(json, r);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or System.Text.Json.JsonException)
        {
            return null; // e.g. text with duplicate keys, which JsonObject refuses: fall back to a text edit
        }
    }

    static string? StructuralCore(string json, Random r)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
        if (root is null) return null;
        var nodes = new List<JsonNode>();
        void Walk(JsonNode? n)
        {
            if (n is null) return;
            nodes.Add(n);
            if (n is JsonObject o) foreach (var kv in o) Walk(kv.Value);
            else if (n is JsonArray a) foreach (var x in a) Walk(x);
        }
        Walk(root);
        var target = nodes[r.Next(nodes.Count)];
        var parent = target.Parent;
        JsonNode? Replacement() => JsonNode.Parse(RandomJsonValue(r), documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 256 });
        JsonNode? ChangedNumber()
        {
            if (target is JsonValue v && v.TryGetValue<System.Text.Json.JsonElement>(out var e) && e.ValueKind == System.Text.Json.JsonValueKind.Number)
            {
                double d = e.GetDouble();
                string text = r.Next(6) switch
                {
                    0 => (d + 1).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    1 => (d - 1).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    2 => (-d).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    3 => (d * 1e6).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    4 => (d + 0.5).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    _ => EdgeNumbers[r.Next(EdgeNumbers.Length)],
                };
                return JsonNode.Parse(text);
            }
            return Replacement();
        }
        int op = r.Next(7);
        if (parent is null)
        {
            if (op == 0) return RandomJsonValue(r);
            if (target is JsonObject ro && ro.Count > 0) { ro.Remove(ro.ElementAt(r.Next(ro.Count)).Key); return root.ToJsonString(); }
            return null;
        }
        string? key = parent is JsonObject po ? po.First(kv => ReferenceEquals(kv.Value, target)).Key : null;
        int index = parent is JsonArray pa ? pa.IndexOf(target) : -1;
        void Set(JsonNode? value)
        {
            if (parent is JsonObject o) o[key!] = value;
            else ((JsonArray)parent)[index] = value;
        }
        switch (op)
        {
            case 0: // remove
                if (parent is JsonObject o0) o0.Remove(key!);
                else ((JsonArray)parent).RemoveAt(index);
                break;
            case 1:
            case 2: Set(ChangedNumber()); break;
            case 3: Set(Replacement()); break;
            case 4: // rename the key, or duplicate the array element
                if (parent is JsonObject o4)
                {
                    o4.Remove(key!);
                    o4[key + (r.Next(2) == 0 ? "_" : "").ToUpperInvariant() + (r.Next(2) == 0 ? "x" : "")] = target;
                }
                else ((JsonArray)parent).Insert(index, target.DeepClone());
                break;
            case 5: // empty or grow a container
                if (target is JsonArray a5) { if (r.Next(2) == 0) a5.Clear(); else a5.Add(Replacement()); }
                else if (target is JsonObject o5) { if (r.Next(2) == 0) o5.Clear(); else o5[RandomText(r, 3)] = Replacement(); }
                else Set(Replacement());
                break;
            default: // swap type: wrap in an array, or turn into a string
                Set(r.Next(2) == 0 ? new JsonArray(target.DeepClone()) : JsonValue.Create(target.ToJsonString()));
                break;
        }
        return root.ToJsonString();
    }

    // ---- bytes ----

    /// <summary>One to three edits of binary data: flip bits, set bytes to 0x00/0xFF, overwrite 8 bytes with a random long, truncate, append, splice out.</summary>
    public static byte[] MutateBytes(byte[] data, Random r, int hotStart = 0, int hotLength = -1)
    {
        var bytes = data.ToList();
        int rounds = 1 + r.Next(3);
        for (int k = 0; k < rounds; k++)
        {
            if (bytes.Count == 0) { bytes.Add((byte)r.Next(256)); continue; }
            int len = hotLength < 0 ? bytes.Count : Math.Min(hotLength, bytes.Count - Math.Min(hotStart, bytes.Count - 1));
            int at = Math.Min(hotStart, bytes.Count - 1) + r.Next(Math.Max(1, len));
            at = Math.Min(at, bytes.Count - 1);
            switch (r.Next(7))
            {
                case 0: bytes[at] ^= (byte)(1 << r.Next(8)); break;
                case 1: bytes[at] = r.Next(2) == 0 ? (byte)0 : (byte)0xFF; break;
                case 2:
                    var word = BitConverter.GetBytes(r.Next(3) == 0 ? long.MaxValue - r.Next(100) : (long)r.Next() * r.Next(1, 1 << 16));
                    for (int i = 0; i < 8 && at + i < bytes.Count; i++) bytes[at + i] = word[i];
                    break;
                case 3: bytes.RemoveRange(at, bytes.Count - at); break;
                case 4: bytes.AddRange(Enumerable.Range(0, 1 + r.Next(32)).Select(_ => (byte)r.Next(256))); break;
                case 5: bytes.RemoveRange(at, Math.Min(1 + r.Next(16), bytes.Count - at)); break;
                default: bytes.Insert(at, (byte)r.Next(256)); break;
            }
        }
        return bytes.ToArray();
    }

    public static byte[] RandomBytes(Random r, int maxLength)
    {
        var b = new byte[r.Next(maxLength + 1)];
        r.NextBytes(b);
        return b;
    }
}
