using System.Text.Json;

namespace Workbook.Util;

/// <summary>Parses user-supplied JSON, turning syntax errors into a <see cref="FormatException"/> that names the source.</summary>
public static class JsonInput
{
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
