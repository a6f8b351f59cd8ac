using System.Text;
using System.Text.RegularExpressions;

namespace Workbook.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet: every byte 0..255 is shown as one printable character, so that byte-level BPE
/// vocabularies are plain strings. Printable Latin-1 bytes (33..126, 161..172, 174..255) stand for themselves;
/// the other 68 bytes take the characters 256, 257, ... in byte order (so a space is 'Ġ', U+0120).
/// </summary>
public static partial class ByteLevel
{
    static readonly char[] ByteToChar = BuildByteToChar();
    static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    /// <summary>The byte-level spelling of <paramref name="text"/>'s UTF-8 bytes.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Appends the bytes a byte-level token stands for; characters outside the alphabet stand for their own UTF-8.</summary>
    public static void AppendBytes(string token, List<byte> output)
    {
        Span<byte> buf = stackalloc byte[4];
        foreach (var rune in token.EnumerateRunes())
        {
            if (rune.IsBmp && CharToByte.TryGetValue((char)rune.Value, out byte b)) output.Add(b);
            else
            {
                int n = rune.EncodeToUtf8(buf);
                for (int i = 0; i < n; i++) output.Add(buf[i]);
            }
        }
    }

    /// <summary>GPT-2's pre-tokenization pattern: contractions, letters, numbers, other symbols (each with an optional leading space), whitespace.</summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    public static partial Regex Gpt2Pattern();
}
