namespace Workbook.Util;

/// <summary>
/// One kind of term in a <see cref="Vocabulary{T}"/>: how it is written, what it means, how to read it back, and
/// typical terms (for help texts and round-trip tests).
/// </summary>
/// <param name="Syntax">How the term is written, e.g. <c>resample</c> or <c>noise[-SCALE][-seedN]</c>.</param>
/// <param name="Description">One line a researcher can act on.</param>
/// <param name="TryParse">The term for a lower-case text, or null when the text is not of this kind.</param>
/// <param name="Examples">Terms of this kind; each must read back from its label.</param>
public sealed record VocabularyEntry<T>(string Syntax, string Description, Func<string, T?> TryParse, IReadOnlyList<T> Examples) where T : class;

/// <summary>
/// A registry of self-describing terms (ablation values, metrics): the one list the command line's help and parsing,
/// the exports, the figure legends and the reports read. Built-in entries come first, in a fixed order; code (a
/// notebook, a test, an extension) may add its own with <see cref="Register"/>.
/// </summary>
public sealed class Vocabulary<T> where T : class
{
    readonly string _what;
    readonly Func<T, string> _label;
    readonly List<VocabularyEntry<T>> _entries;
    readonly object _lock = new();

    /// <param name="what">What a term is, for messages ("ablation value", "metric").</param>
    /// <param name="label">A term's canonical spelling, which <see cref="Parse"/> reads back.</param>
    public Vocabulary(string what, Func<T, string> label, IEnumerable<VocabularyEntry<T>> builtIn)
    {
        _what = what;
        _label = label;
        _entries = new List<VocabularyEntry<T>>();
        foreach (var entry in builtIn) Add(entry);
    }

    /// <summary>The entries, built-in first, then registered ones in registration order.</summary>
    public IReadOnlyList<VocabularyEntry<T>> Entries
    {
        get { lock (_lock) return _entries.ToArray(); }
    }

    /// <summary>Every example term of every entry.</summary>
    public IReadOnlyList<T> Examples => Entries.SelectMany(e => e.Examples).ToArray();

    /// <summary>
    /// Adds an entry until the returned scope is disposed. Its syntax must be new and each of its examples must read
    /// back from its label through this entry and no earlier one.
    /// </summary>
    public IDisposable Register(VocabularyEntry<T> entry)
    {
        lock (_lock) Add(entry);
        return new Registration(this, entry);
    }

    void Add(VocabularyEntry<T> entry)
    {
        if (_entries.Any(e => e.Syntax == entry.Syntax)) throw new ArgumentException($"The {_what} '{entry.Syntax}' is already registered.");
        foreach (var example in entry.Examples)
        {
            string label = _label(example);
            if (_entries.FirstOrDefault(e => e.TryParse(label.ToLowerInvariant()) is not null) is { } earlier)
                throw new ArgumentException($"The {_what} '{label}' already reads as '{earlier.Syntax}'; choose another spelling.");
            if (!Equals(entry.TryParse(label.ToLowerInvariant()), example))
                throw new ArgumentException($"The {_what} '{label}' does not read back through its own entry '{entry.Syntax}'.");
        }
        _entries.Add(entry);
    }

    sealed class Registration(Vocabulary<T> owner, VocabularyEntry<T> entry) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._lock) owner._entries.Remove(entry);
        }
    }

    /// <summary>The term spelled <paramref name="text"/> (case-insensitive), or null.</summary>
    public T? TryParse(string text)
    {
        string lower = text.Trim().ToLowerInvariant();
        foreach (var entry in Entries)
            if (entry.TryParse(lower) is { } term) return term;
        return null;
    }

    /// <summary>The term spelled <paramref name="text"/>, or an error that names the known spellings.</summary>
    public T Parse(string text) => TryParse(text) ?? throw new ArgumentException(
        $"Unknown {_what} '{text}'.{NearestNames.DidYouMean(text, Examples.Select(_label))} Known: {Syntaxes}.");

    /// <summary>Every entry's syntax, comma-separated (for option descriptions).</summary>
    public string Syntaxes => string.Join(", ", Entries.Select(e => e.Syntax));

    /// <summary>One line per entry: its syntax and description.</summary>
    public string Describe(string indent = "  ")
    {
        var entries = Entries;
        int width = entries.Max(e => e.Syntax.Length);
        return string.Join("\n", entries.Select(e => $"{indent}{e.Syntax.PadRight(width)}  {e.Description}"));
    }
}

/// <summary>
/// Writes a vocabulary term as its label and reads it back through the vocabulary, so that JSON spells ablation values
/// and metrics the way the command line and the exports do (and an abstract record type can be read at all).
/// </summary>
public abstract class LabelJsonConverter<T>(Func<T, string> label, Func<string, T> parse) : System.Text.Json.Serialization.JsonConverter<T> where T : class
{
    public override T Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options)
    {
        if (reader.TokenType != System.Text.Json.JsonTokenType.String) throw new System.Text.Json.JsonException($"Expected a {typeof(T).Name} label (a string).");
        try
        {
            return parse(reader.GetString()!);
        }
        catch (ArgumentException e)
        {
            throw new System.Text.Json.JsonException(e.Message, e);
        }
    }

    public override void Write(System.Text.Json.Utf8JsonWriter writer, T value, System.Text.Json.JsonSerializerOptions options) => writer.WriteStringValue(label(value));
}
