using System.Text.Json;

namespace Workbook.Util;

/// <summary>Parses user-supplied JSON, turning syntax errors into a <see cref="FormatException"/> that names the source.</summary>
public static class JsonInput
{
    /// <summary>
    /// Whether <paramref name="bytes"/> are valid UTF-8. JsonDocument accepts invalid UTF-8 inside strings and fails
    /// only later, with an InvalidOperationException, when a property name or string is read: check bytes first.
    /// </summary>
    public static bool IsUtf8(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

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
