namespace Workbook.Tokenization;

/// <summary>
/// A fixed list of symbols separated by whitespace: "BOS x y w" -> [0, 3, 4, 2] for the symbols
/// [BOS, compiler_pad, w, x, y, z]. Used by the compiled Tracr models, whose inputs are symbol sequences.
/// Like every tokenizer here it adds no BOS by itself: write "BOS" (or use EncodePrompt) when the model needs one.
/// </summary>
public sealed class SymbolTokenizer : ITokenizer
{
    readonly string[] _symbols;
    readonly Dictionary<string, int> _ids;
    readonly int? _bos;

    public SymbolTokenizer(string name, IReadOnlyList<string> symbols, string? bosSymbol)
    {
        Name = name;
        _symbols = symbols.ToArray();
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _symbols.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(_symbols[i]) || _symbols[i].Any(char.IsWhiteSpace))
                throw new ArgumentException($"Symbol {i} ('{_symbols[i]}') of tokenizer '{name}' is empty or contains whitespace.");
            if (!_ids.TryAdd(_symbols[i], i)) throw new ArgumentException($"Symbol '{_symbols[i]}' is listed twice in tokenizer '{name}'.");
        }
        if (bosSymbol != null)
            _bos = _ids.TryGetValue(bosSymbol, out int b) ? b : throw new ArgumentException($"BOS symbol '{bosSymbol}' is not one of the symbols of '{name}'.");
    }

    public string Name { get; }
    public int VocabSize => _symbols.Length;
    public (string Text, int Id)? Bos => _bos is int b ? (_symbols[b], b) : null;
    public IReadOnlyList<string> Symbols => _symbols;

    public IReadOnlyList<int> Encode(string text) =>
        text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(s => _ids.TryGetValue(s, out int id)
                ? id
                : throw new ArgumentException($"'{s}' is not a symbol of tokenizer '{Name}' (symbols: {string.Join(", ", _symbols)}).")).ToArray();

    public string Decode(IEnumerable<int> ids) => string.Join(" ", ids.Select(i => i >= 0 && i < _symbols.Length
        ? _symbols[i]
        : throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {i} is outside tokenizer '{Name}' (0..{_symbols.Length - 1}).")));
}
