namespace Workbook.Util;

/// <summary>Suggests near matches for a misspelt name, for error messages.</summary>
public static class NearestNames
{
    /// <summary>Up to <paramref name="count"/> candidates closest to <paramref name="name"/> by edit distance (case-insensitive).</summary>
    public static IReadOnlyList<string> Suggest(string name, IEnumerable<string> candidates, int count = 3)
    {
        string lower = name.ToLowerInvariant();
        return candidates
            .Select(c => (c, d: EditDistance(lower, c.ToLowerInvariant())))
            .Where(x => x.d <= Math.Max(2, name.Length / 2))
            .OrderBy(x => x.d).ThenBy(x => x.c, StringComparer.Ordinal)
            .Take(count).Select(x => x.c).ToList();
    }

    /// <summary>"Did you mean 'a', 'b'?" or an empty string when nothing is close.</summary>
    public static string DidYouMean(string name, IEnumerable<string> candidates)
    {
        var s = Suggest(name, candidates);
        return s.Count == 0 ? "" : $" Did you mean {string.Join(", ", s.Select(x => $"'{x}'"))}?";
    }

    public static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
