using System.Text.Json;
using System.Text.Json.Nodes;

namespace Workbook.Util;

/// <summary>
/// Reads JSON that comes from outside (files, the hub, embedded resources) the same way everywhere: files through
/// <see cref="SafeRead"/> (regular files only, size bounded before anything is read), the bytes UTF-8 and the text JSON
/// of bounded nesting, and every failure is one error that names the source:
/// <c>{source}: not valid UTF-8 text.</c>, <c>{source}: not valid JSON: ...</c>, <c>{source}: expected a JSON object, got ...</c>.
/// Each reader chooses the exception type its callers expect (<see cref="FormatException"/> by default).
/// </summary>
public static class JsonInput
{
    /// <summary>Makes the exception a reader throws for a message (and the exception that caused it, if any).</summary>
    public delegate Exception ErrorFactory(string message, Exception? inner);

    static Exception Format(string message, Exception? inner) => new FormatException(message, inner);

    /// <summary>The nesting JsonDocument accepts by default; the workbook's formats need far less.</summary>
    public const int DefaultMaxDepth = 64;

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
    /// The bytes of a JSON file, read through <see cref="SafeRead"/> (a regular file of at most <paramref name="maxBytes"/>
    /// bytes, refused before it is read when larger) and checked to be UTF-8.
    /// </summary>
    public static byte[] ReadBytes(string path, ErrorFactory? error = null, long maxBytes = MaxFileBytes)
    {
        error ??= Format;
        var bytes = SafeRead.ReadAllBytes(path, maxBytes, Simple(error));
        if (!IsUtf8(bytes)) throw error($"{path}: not valid UTF-8 text.", null);
        return bytes;
    }

    /// <summary>The text of a JSON file (as <see cref="ReadBytes"/>), a leading byte-order mark dropped.</summary>
    public static string ReadText(string path, ErrorFactory? error = null, long maxBytes = MaxFileBytes) =>
        SafeRead.ReadAllText(path, maxBytes, Simple(error ?? Format));

    /// <summary>Reads (as <see cref="ReadBytes"/>) and parses the file at <paramref name="path"/>, which names it in errors.</summary>
    public static JsonDocument ReadFile(string path, ErrorFactory? error = null, int maxDepth = DefaultMaxDepth, long maxBytes = MaxFileBytes) =>
        Parse(ReadBytes(path, error, maxBytes), path, error, maxDepth);

    /// <summary>Reads (as <see cref="ReadText"/>) and parses the file at <paramref name="path"/> into a mutable tree whose root must be an object.</summary>
    public static JsonObject ReadObjectNode(string path, ErrorFactory? error = null, int maxDepth = DefaultMaxDepth, long maxBytes = MaxFileBytes) =>
        ParseObjectNode(ReadText(path, error, maxBytes), path, error, maxDepth);

    static Func<string, Exception> Simple(ErrorFactory error) => message => error(message, null);

    /// <summary>Parses UTF-8 bytes read from <paramref name="source"/>.</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> bytes, string source, ErrorFactory? error = null, int maxDepth = DefaultMaxDepth)
    {
        error ??= Format;
        if (!IsUtf8(bytes.Span)) throw error($"{source}: not valid UTF-8 text.", null);
        try
        {
            CheckEscapes(bytes.Span, maxDepth);
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw error($"{source}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// JSON's grammar allows an escape that names half a UTF-16 surrogate pair (<c>"\ud800"</c>), but no .NET string can
    /// hold it: JsonDocument parses such text and then throws an InvalidOperationException from whichever property lookup
    /// or GetString meets it, deep inside a reader. Every escaped string and property name is decoded once here instead,
    /// so such text is refused up front as not valid JSON. Only text with a <c>\u</c> escape is scanned.
    /// </summary>
    static void CheckEscapes(ReadOnlySpan<byte> utf8, int maxDepth)
    {
        if (utf8.IndexOf("\\u"u8) < 0) return;
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            while (reader.Read())
                if ((reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName) && reader.ValueIsEscaped)
                    reader.GetString();
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException($"the string at byte {reader.TokenStartIndex} escapes half of a UTF-16 surrogate pair, which no text can hold.", e);
        }
    }

    static void CheckEscapes(string json, int maxDepth)
    {
        if (json.Contains("\\u", StringComparison.Ordinal)) CheckEscapes(System.Text.Encoding.UTF8.GetBytes(json), maxDepth);
    }

    /// <summary>Parses text read from <paramref name="source"/>.</summary>
    public static JsonDocument Parse(string json, string source, ErrorFactory? error = null, int maxDepth = DefaultMaxDepth)
    {
        try
        {
            CheckEscapes(json, maxDepth);
            return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw (error ?? Format)($"{source}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Parses text into a mutable <see cref="JsonNode"/> tree; the root must be an object.</summary>
    public static JsonObject ParseObjectNode(string json, string source, ErrorFactory? error = null, int maxDepth = DefaultMaxDepth)
    {
        error ??= Format;
        JsonNode? root;
        try
        {
            CheckEscapes(json, maxDepth);
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw error($"{source}: not valid JSON: {e.Message}", e);
        }
        return root as JsonObject ?? throw error($"{source}: expected a JSON object, got {(root is null ? "null" : root.GetValueKind().ToString())}.", null);
    }

    /// <summary>The document's root, which must be an object.</summary>
    public static JsonElement RootObject(JsonDocument doc, string source, ErrorFactory? error = null) =>
        doc.RootElement.ValueKind == JsonValueKind.Object
            ? doc.RootElement
            : throw (error ?? Format)($"{source}: expected a JSON object, got {doc.RootElement.ValueKind}.", null);

    /// <summary>Deserializes text read from <paramref name="source"/> into <typeparamref name="T"/>; null or malformed JSON is an error naming it.</summary>
    public static T Deserialize<T>(string json, string source, JsonSerializerOptions options, ErrorFactory? error = null)
    {
        error ??= Format;
        try
        {
            CheckEscapes(json, options.MaxDepth > 0 ? options.MaxDepth : DefaultMaxDepth);
            return JsonSerializer.Deserialize<T>(json, options) ?? throw error($"{source}: the JSON is null.", null);
        }
        catch (JsonException e)
        {
            throw error($"{source}: not valid JSON for {typeof(T).Name}: {e.Message}", e);
        }
    }
}
