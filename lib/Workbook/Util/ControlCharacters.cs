using System.Text;

namespace Workbook.Util;

/// <summary>
/// Makes text safe to echo on a terminal: names, paths, prompts and messages can come from files or arguments an
/// adversary wrote, and a raw ESC or carriage return in them could rewrite the screen (fake a success line, retitle
/// the window, hide an error). Control characters (C0, DEL, C1), line and paragraph separators and bidirectional
/// overrides are written as escapes (<c>\n</c>, <c>\x1b</c>, <c>\u202e</c>); everything else is kept as it is.
/// </summary>
public static class ControlCharacters
{
    public static bool NeedsEscape(char c) =>
        c < 0x20 || c is >= '\u007f' and <= '\u009f' || c is '\u2028' or '\u2029' || c is >= '\u202a' and <= '\u202e' || c is >= '\u2066' and <= '\u2069';

    /// <summary>The text with every control character escaped (null becomes the empty string).</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        int first = 0;
        while (first < text.Length && !NeedsEscape(text[first])) first++;
        if (first == text.Length) return text;
        var sb = new StringBuilder(text.Length + 16).Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (!NeedsEscape(c)) sb.Append(c);
            else sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when c <= '\u00ff' => $"\\x{(int)c:x2}",
                _ => $"\\u{(int)c:x4}",
            });
        }
        return sb.ToString();
    }

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming <paramref name="what"/> when <paramref name="text"/> holds a control
    /// character (a NUL, an escape): no name or path of the workbook's has one, and it would end up in messages and paths.
    /// </summary>
    public static void EnsureNone(string text, string what)
    {
        for (int i = 0; i < text.Length; i++)
            if (NeedsEscape(text[i]))
                throw new ArgumentException($"{what} '{Quote(text, 80)}' contains a control character ({Escape(text[i].ToString())} at position {i}); names and paths cannot.");
    }

    /// <summary>At most <paramref name="max"/> characters of <paramref name="text"/>, escaped, with "…" when cut (for quoting input in messages).</summary>
    public static string Quote(string? text, int max = 80)
    {
        text ??= "";
        return Escape(text.Length > max ? text[..max] + "…" : text);
    }
}
