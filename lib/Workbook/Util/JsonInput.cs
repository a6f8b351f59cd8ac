using System.Text.Json;

namespace Workbook.Util;

/// <summary>Parses user-supplied JSON, turning syntax errors into a <see cref="FormatException"/> that names the source.</summary>
public static class JsonInput
{
    /// <summary>
    /// Largest JSON file read (datasets, circuits, scores, scenario files, tokenizer.json): a file is parsed whole,
    /// so an endless or multi-gigabyte input must be refused before it is read, not when memory runs out.
    /// </summary>
    public const long MaxFileBytes = 256L << 20;

    /// <summary>Largest small JSON file (config.json, tokenizer_config.json, shard indexes): these are kilobytes in practice.</summary>
    public const long MaxSmallFileBytes = 16L << 20;

    /// <summary>
    /// Whether <paramref name="bytes"/> are valid UTF-8. JsonDocument accepts invalid UTF-8 inside strings and fails
    /// only later, with an InvalidOperationException, when a property name or string is read: check bytes first.
    /// </summary>
    public static bool IsUtf8(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    /// <summary>
    /// The bytes of a JSON file, read through <see cref="SafeRead"/> (a regular file of at most <paramref name="maxBytes"/>)
    /// and checked to be UTF-8; <paramref name="error"/> makes the caller's exception from a message naming the file.
    /// </summary>
    public static byte[] ReadFile(string path, Func<string, Exception> error, long maxBytes = MaxFileBytes)
    {
        var bytes = SafeRead.ReadAllBytes(path, maxBytes, error);
        if (!IsUtf8(bytes)) throw error($"{path}: not valid UTF-8 text.");
        return bytes;
    }

    /// <summary>The text of a JSON file (see <see cref="ReadFile"/>), a leading byte-order mark dropped.</summary>
    public static string ReadText(string path, Func<string, Exception> error, long maxBytes = MaxFileBytes) =>
        SafeRead.ReadAllText(path, maxBytes, error);

    public static JsonDocument Parse(string json, string source)
    {
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: not valid JSON: {e.Message}", e);
        }
    }
}
