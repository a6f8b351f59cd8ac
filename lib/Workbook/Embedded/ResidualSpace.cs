using Workbook.Util;

namespace Workbook.Embedded;

/// <summary>
/// A residual stream whose every dimension has a name, as in a Tracr-compiled model: "tokens:x",
/// "indices:3", "one", "frac_prevs". Dimension order is the order of <see cref="Labels"/>.
/// </summary>
public sealed class ResidualSpace
{
    readonly Dictionary<string, int> _index;

    public IReadOnlyList<string> Labels { get; }
    public int Count => Labels.Count;

    public ResidualSpace(IEnumerable<string> labels)
    {
        Labels = labels.ToArray();
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var label in Labels)
            if (!_index.TryAdd(label, _index.Count))
                throw new ArgumentException($"Residual direction '{label}' is listed twice.");
    }

    /// <summary>The dimension named <paramref name="label"/>.</summary>
    public int this[string label] => _index.TryGetValue(label, out int i)
        ? i
        : throw new KeyNotFoundException($"No residual direction '{label}'.{NearestNames.DidYouMean(label, Labels)}");

    /// <summary>Labels "<paramref name="prefix"/>:v" for each value, e.g. Category("indices", 0..4) = indices:0 ... indices:4.</summary>
    public static IEnumerable<string> Category(string prefix, IEnumerable<object> values) => values.Select(v => $"{prefix}:{v}");

    public static IEnumerable<string> Category(string prefix, IEnumerable<int> values) => values.Select(v => $"{prefix}:{v}");
}
