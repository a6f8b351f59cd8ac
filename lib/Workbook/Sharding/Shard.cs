using System.Globalization;
using System.Text.Json.Serialization;

namespace Workbook.Sharding;

/// <summary>A contiguous run of work units, [Start, End), in a run's canonical unit order.</summary>
public readonly record struct UnitRange(int Start, int End)
{
    [JsonIgnore] public int Count => End - Start;
    public bool Contains(int unit) => unit >= Start && unit < End;
    public static UnitRange All(int total) => new(0, total);
    public override string ToString() => Count == 0 ? "none" : Count == 1 ? $"unit {Start}" : $"units {Start}..{End - 1}";
}

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/> (1-based, "K/N" on the command line): the K-th of N contiguous,
/// near-equal slices of a run's work units in their canonical order. A run's work units are independent pieces whose
/// results, put back together in that order, give exactly the unsharded result (see docs/cluster.md).
/// </summary>
public sealed record Shard(int Index, int Count)
{
    /// <summary>Largest N accepted: far more than any cluster array, and small enough that no count overflows.</summary>
    public const int MaxCount = 100_000;

    /// <summary>Parses "K/N" (1 ≤ K ≤ N ≤ <see cref="MaxCount"/>); the error names the option and what is wrong.</summary>
    public static Shard Parse(string text, string option = "--shard")
    {
        string Bad(string why) => $"{option} '{text}': {why}";
        var pieces = text.Split('/');
        if (pieces.Length != 2) throw new ArgumentException(Bad("expected K/N, the K-th of N shards (for example 2/8)."));
        int Number(string s, string what)
        {
            if (!int.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int v))
                throw new ArgumentException(Bad($"{what} '{s}' is not a whole number; expected K/N, the K-th of N shards (for example 2/8)."));
            return v;
        }
        int k = Number(pieces[0], "K"), n = Number(pieces[1], "N");
        if (n < 1) throw new ArgumentException(Bad("N must be at least 1."));
        if (n > MaxCount) throw new ArgumentException(Bad($"N must be at most {MaxCount:N0}."));
        if (k < 1 || k > n) throw new ArgumentException(Bad($"K must be between 1 and N={n}."));
        return new Shard(k, n);
    }

    /// <summary>
    /// This shard's units out of <paramref name="total"/>: units [⌊(K−1)·U/N⌋, ⌊K·U/N⌋), so every unit belongs to exactly
    /// one shard and shards differ in size by at most one. More shards than units is refused (a shard with nothing to
    /// do would hold a cluster slot for nothing and usually means N was chosen for another run).
    /// </summary>
    public UnitRange Units(int total, string unitsDescription)
    {
        if (total < 1) throw new ArgumentException($"This run has no work units ({unitsDescription}), so there is nothing to shard.");
        if (Count > total)
            throw new ArgumentException($"Shard {this}: this run has only {total} work unit{(total == 1 ? "" : "s")} ({unitsDescription}); use at most {total} shard{(total == 1 ? "" : "s")}.");
        return new UnitRange((int)((long)(Index - 1) * total / Count), (int)((long)Index * total / Count));
    }

    public override string ToString() => $"{Index}/{Count}";
}
