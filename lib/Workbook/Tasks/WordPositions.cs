using System.Globalization;

namespace Workbook.Tasks;

/// <summary>
/// Named token positions of a dataset (AutoCircuit's <c>word_idxs</c>): label → index, in file order.
/// Indices exclude any BOS token, as in the JSON files (spec F.2); <see cref="Shifted"/> adds the BOS offset.
/// Position expressions used by circuits resolve through <see cref="Resolve"/>: a label (<c>S2</c>), a label with
/// an offset (<c>S1+1</c>, <c>first_name_tok+1</c>: an exact label wins over arithmetic), or an inclusive range of
/// two expressions (<c>B_def..param_3</c>).
/// </summary>
public sealed class WordPositions
{
    readonly List<KeyValuePair<string, int>> _entries;
    readonly Dictionary<string, int> _byLabel;

    public WordPositions(IEnumerable<KeyValuePair<string, int>> entries)
    {
        _entries = entries.ToList();
        _byLabel = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (label, index) in _entries)
        {
            if (index < 0) throw new ArgumentException($"Word position '{label}' is {index}; positions must not be negative.");
            if (!_byLabel.TryAdd(label, index)) throw new ArgumentException($"Word position label '{label}' is listed twice.");
        }
    }

    public static WordPositions Empty { get; } = new(Array.Empty<KeyValuePair<string, int>>());

    public IReadOnlyList<KeyValuePair<string, int>> Entries => _entries;
    public int Count => _entries.Count;
    public IEnumerable<string> Labels => _entries.Select(e => e.Key);

    public bool TryGet(string label, out int index) => _byLabel.TryGetValue(label, out index);

    public int this[string label] => _byLabel.TryGetValue(label, out int i)
        ? i
        : throw new KeyNotFoundException($"Unknown position label '{label}'; known labels: {string.Join(", ", Labels)}.");

    /// <summary>Every index moved by <paramref name="offset"/> (+1 when a BOS token is prepended).</summary>
    public WordPositions Shifted(int offset) => offset == 0 ? this : new(_entries.Select(e => KeyValuePair.Create(e.Key, e.Value + offset)));

    /// <summary>The positions one expression stands for, in increasing order (one for a label, several for a range).</summary>
    public IReadOnlyList<int> Resolve(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        int dots = expression.IndexOf("..", StringComparison.Ordinal);
        if (dots > 0 && !_byLabel.ContainsKey(expression))
        {
            int from = ResolveOne(expression[..dots].Trim(), expression), to = ResolveOne(expression[(dots + 2)..].Trim(), expression);
            if (to < from) throw new ArgumentException($"Position range '{expression}' runs backwards ({from} > {to}).");
            return Enumerable.Range(from, to - from + 1).ToArray();
        }
        return new[] { ResolveOne(expression.Trim(), expression) };
    }

    int ResolveOne(string text, string whole)
    {
        if (_byLabel.TryGetValue(text, out int exact)) return exact;
        int sign = Math.Max(text.LastIndexOf('+'), text.LastIndexOf('-'));
        if (sign > 0 && _byLabel.TryGetValue(text[..sign], out int baseIndex)
            && int.TryParse(text[(sign + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int offset))
        {
            int result = text[sign] == '+' ? baseIndex + offset : baseIndex - offset;
            if (result < 0) throw new ArgumentException($"Position '{whole}' resolves to {result}, before the first token.");
            return result;
        }
        throw new KeyNotFoundException(
            $"Unknown position label '{text}'{(text == whole ? "" : $" in '{whole}'")}; known labels: {(Count == 0 ? "(none)" : string.Join(", ", Labels))}.");
    }

    public override string ToString() => "{" + string.Join(", ", _entries.Select(e => $"{e.Key}: {e.Value}")) + "}";
}
