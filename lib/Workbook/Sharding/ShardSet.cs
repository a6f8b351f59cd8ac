namespace Workbook.Sharding;

/// <summary>A part file as given to a merge: its path (for messages) and its contents.</summary>
public sealed record ShardPartInput(string File, ShardPart Part);

/// <summary>
/// Checks that a set of parts is exactly one whole run: one command, one identity, the same N, every shard 1..N
/// once and each holding the units its shard number gives it. Every refusal is one line naming the files involved.
/// </summary>
public static class ShardSet
{
    /// <summary>The parts ordered by shard number, or an <see cref="ArgumentException"/> saying what is wrong.</summary>
    public static IReadOnlyList<ShardPartInput> Check(IReadOnlyList<ShardPartInput> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("No part files were given.");
        var first = parts[0];
        var firstShard = first.Part.ParsedShard();
        foreach (var p in parts.Skip(1))
        {
            if (p.Part.Command != first.Part.Command)
                throw new ArgumentException($"'{p.File}' is a part of `{p.Part.Command}` but '{first.File}' is a part of `{first.Part.Command}`; merge the parts of one run only.");
            var shard = p.Part.ParsedShard();
            if (shard.Count != firstShard.Count)
                throw new ArgumentException($"'{p.File}' is shard {shard} but '{first.File}' is shard {firstShard}; the parts of one run share N.");
            if (FirstDifference(first.Part.Identity, p.Part.Identity) is { } key)
                throw new ArgumentException($"'{p.File}' and '{first.File}' are parts of different runs: their {key} is {Show(p.Part.Identity, key)} and {Show(first.Part.Identity, key)}.");
        }
        var byIndex = new SortedDictionary<int, ShardPartInput>();
        foreach (var p in parts)
        {
            var shard = p.Part.ParsedShard();
            if (byIndex.TryGetValue(shard.Index, out var other))
                throw new ArgumentException(SamePath(other.File, p.File)
                    ? $"'{p.File}' is given twice (shard {shard}); each shard must be merged once."
                    : $"'{other.File}' and '{p.File}' are both shard {shard}: they overlap; give each shard once.");
            var expected = shard.Units(p.Part.TotalUnits, "as recorded");
            if (p.Part.Units != expected)
                throw new ArgumentException($"'{p.File}' holds {p.Part.Units} but shard {shard} of {p.Part.TotalUnits} units is {expected}; it was not written by this workbook's --shard.");
            byIndex[shard.Index] = p;
        }
        var missing = Enumerable.Range(1, firstShard.Count).Where(i => !byIndex.ContainsKey(i)).ToArray();
        if (missing.Length > 0)
        {
            string which = missing.Length <= 5 ? string.Join(", ", missing.Select(i => $"{i}/{firstShard.Count}")) : $"{missing.Length} of {firstShard.Count}";
            string given = parts.Count <= 4 ? string.Join(", ", parts.Select(p => $"'{p.File}'")) : $"{parts.Count} files";
            throw new ArgumentException($"Shard{(missing.Length == 1 ? "" : "s")} {which} {(missing.Length == 1 ? "is" : "are")} missing (given: {given}); a merge needs every shard of the run.");
        }
        return byIndex.Values.ToArray();
    }

    static string? FirstDifference(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Keys.Concat(b.Keys).FirstOrDefault(k => !a.TryGetValue(k, out var x) || !b.TryGetValue(k, out var y) || x != y);

    static string Show(IReadOnlyDictionary<string, string> identity, string key)
    {
        if (!identity.TryGetValue(key, out var v)) return "absent";
        return v.Length <= 80 ? $"'{v}'" : $"'{v[..77]}...'";
    }

    static bool SamePath(string a, string b) => string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
}
