namespace Workbook.Util;

/// <summary>
/// A small seeded random number generator (SplitMix64) whose sequence is fixed by this code alone, so that
/// data generated from a seed is the same on every platform and .NET version (System.Random makes no such promise).
/// </summary>
public sealed class SeededRandom
{
    ulong _state;

    public SeededRandom(ulong seed) => _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform integer in [0, <paramref name="count"/>), without modulo bias.</summary>
    public int Next(int count)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), "count must be positive.");
        ulong n = (ulong)count, limit = ulong.MaxValue - ulong.MaxValue % n;
        ulong x;
        do x = NextUInt64(); while (x >= limit);
        return (int)(x % n);
    }

    /// <summary>A uniform element of <paramref name="items"/>.</summary>
    public T Choice<T>(IReadOnlyList<T> items) => items.Count == 0
        ? throw new ArgumentException("Cannot choose from an empty list.", nameof(items))
        : items[Next(items.Count)];

    /// <summary>A uniform double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
