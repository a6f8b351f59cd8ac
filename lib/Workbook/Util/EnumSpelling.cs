namespace Workbook.Util;

/// <summary>
/// The words of a closed choice (an enum): one canonical word per value, used for labels, exports and the command
/// line, plus alternative spellings that parse too (plurals, say).
/// </summary>
public sealed class EnumSpelling<T> where T : struct, Enum
{
    readonly string _what;
    readonly Dictionary<T, string> _word = new();
    readonly Dictionary<string, T> _read = new(StringComparer.OrdinalIgnoreCase);

    /// <param name="what">What the choice is, for messages ("component").</param>
    /// <param name="words">Every value with its word and, optionally, more spellings it is read from.</param>
    public EnumSpelling(string what, params (T Value, string Word, string[] Aliases)[] words)
    {
        _what = what;
        foreach (var (value, word, aliases) in words)
        {
            _word.Add(value, word);
            foreach (var spelling in aliases.Prepend(word)) _read.Add(spelling, value);
        }
        var missing = Enum.GetValues<T>().Where(v => !_word.ContainsKey(v)).ToList();
        if (missing.Count > 0) throw new ArgumentException($"No word for {what} {string.Join(", ", missing)}.");
        Words = _word.Values.ToArray();
    }

    /// <summary>The canonical words, in the order given.</summary>
    public IReadOnlyList<string> Words { get; }

    public string this[T value] => _word[value];

    public bool TryParse(string text, out T value) => _read.TryGetValue(text.Trim(), out value);

    public T Parse(string text) => TryParse(text, out var value)
        ? value
        : throw new ArgumentException($"Unknown {_what} '{text}'. Use {string.Join(", ", Words.Take(Words.Count - 1))}{(Words.Count > 1 ? " or " : "")}{Words[^1]}.");
}
